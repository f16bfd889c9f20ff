//! The words generated prose is made of, by part of speech.
//!
//! Common English words, so the text tokenizes like ordinary prose: most
//! words are one BPE token, while names, places and numbers take a few, as
//! in an encyclopedia article. Every list is ASCII.

/// A countable noun, singular and plural.
#[derive(Clone, Copy, Debug)]
pub struct Noun {
    pub one: &'static str,
    pub many: &'static str,
}

const fn noun(one: &'static str, many: &'static str) -> Noun {
    Noun { one, many }
}

/// A verb's forms: base ("build"), third person ("builds"), past ("built")
/// and past participle ("built").
#[derive(Clone, Copy, Debug)]
pub struct Verb {
    pub base: &'static str,
    pub third: &'static str,
    pub past: &'static str,
    pub participle: &'static str,
}

const fn verb(
    base: &'static str,
    third: &'static str,
    past: &'static str,
    participle: &'static str,
) -> Verb {
    Verb {
        base,
        third,
        past,
        participle,
    }
}

/// What an article is about: "the Ashford *Canal*", "the canal".
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// In the title.
    pub title: &'static str,
    /// In running text, after "the".
    pub noun: &'static str,
    /// How it came to be: "built", "founded", "first held".
    pub origin: &'static str,
}

const fn kind(title: &'static str, noun: &'static str, origin: &'static str) -> Kind {
    Kind {
        title,
        noun,
        origin,
    }
}

pub const KINDS: &[Kind] = &[
    kind("Canal", "canal", "built"),
    kind("Railway", "railway", "opened"),
    kind("Observatory", "observatory", "founded"),
    kind("Library", "library", "established"),
    kind("Bridge", "bridge", "built"),
    kind("Harbor", "harbor", "built"),
    kind("Museum", "museum", "opened"),
    kind("Market", "market", "first held"),
    kind("Academy", "academy", "founded"),
    kind("Festival", "festival", "first held"),
    kind("Mill", "mill", "built"),
    kind("Lighthouse", "lighthouse", "built"),
    kind("Reservoir", "reservoir", "completed"),
    kind("Hospital", "hospital", "opened"),
    kind("Orchestra", "orchestra", "founded"),
    kind("Gazette", "newspaper", "first printed"),
];

/// Place names are a start and an end: "Ash" + "ford".
pub const PLACE_STARTS: &[&str] = &[
    "Ash", "Bram", "Cal", "Dun", "El", "Fen", "Glen", "Hal", "Ivy", "Kel", "Lin", "Mar", "Nor",
    "Ock", "Pen", "Quen", "Ros", "Sel", "Thorn", "Ul", "Ver", "Wick", "Yar", "Zel",
];
pub const PLACE_ENDS: &[&str] = &[
    "ford", "ton", "by", "wick", "dale", "mere", "stead", "field", "bury", "holm", "mouth", "ley",
    "worth", "gate", "haven", "moor",
];

pub const FIRST_NAMES: &[&str] = &[
    "Anna",
    "Thomas",
    "Margaret",
    "Henry",
    "Clara",
    "Daniel",
    "Eleanor",
    "Samuel",
    "Lucy",
    "Arthur",
    "Helen",
    "Peter",
    "Ruth",
    "George",
    "Alice",
    "Walter",
    "Grace",
    "Robert",
    "Edith",
    "James",
    "Mary",
    "Frederick",
    "Agnes",
    "William",
    "Sarah",
    "Joseph",
    "Martha",
    "Charles",
    "Emily",
    "Hugh",
];
pub const LAST_NAMES: &[&str] = &[
    "Carter",
    "Holloway",
    "Brennan",
    "Whitfield",
    "Ashby",
    "Morton",
    "Lindqvist",
    "Okafor",
    "Delgado",
    "Fischer",
    "Novak",
    "Kowalski",
    "Moreau",
    "Tanaka",
    "Haddad",
    "Petrov",
    "Santos",
    "Byrne",
    "Mercer",
    "Langley",
    "Hartmann",
    "Rossi",
    "Nakamura",
    "Osei",
    "Varga",
    "Quinn",
    "Sinclair",
    "Dalton",
    "Fairbanks",
    "Ruiz",
];

pub const PROFESSIONS: &[&str] = &[
    "engineer",
    "merchant",
    "teacher",
    "physician",
    "architect",
    "farmer",
    "lawyer",
    "printer",
    "surveyor",
    "banker",
    "chemist",
    "historian",
];

/// Who acts: people and bodies of people ("the *council* approved").
pub const AGENTS: &[Noun] = &[
    noun("council", "councils"),
    noun("committee", "committees"),
    noun("company", "companies"),
    noun("government", "governments"),
    noun("society", "societies"),
    noun("university", "universities"),
    noun("court", "courts"),
    noun("community", "communities"),
    noun("family", "families"),
    noun("student", "students"),
    noun("worker", "workers"),
    noun("farmer", "farmers"),
    noun("merchant", "merchants"),
    noun("engineer", "engineers"),
    noun("scientist", "scientists"),
    noun("writer", "writers"),
    noun("visitor", "visitors"),
    noun("resident", "residents"),
    noun("member", "members"),
    noun("leader", "leaders"),
    noun("officer", "officers"),
    noun("teacher", "teachers"),
    noun("trader", "traders"),
    noun("builder", "builders"),
    noun("board", "boards"),
    noun("club", "clubs"),
    noun("guild", "guilds"),
    noun("firm", "firms"),
    noun("landowner", "landowners"),
    noun("volunteer", "volunteers"),
];

/// What is acted on: "approved a new *plan*".
pub const THINGS: &[Noun] = &[
    noun("report", "reports"),
    noun("survey", "surveys"),
    noun("study", "studies"),
    noun("method", "methods"),
    noun("system", "systems"),
    noun("process", "processes"),
    noun("network", "networks"),
    noun("record", "records"),
    noun("map", "maps"),
    noun("book", "books"),
    noun("letter", "letters"),
    noun("journal", "journals"),
    noun("tradition", "traditions"),
    noun("price", "prices"),
    noun("law", "laws"),
    noun("ship", "ships"),
    noun("engine", "engines"),
    noun("machine", "machines"),
    noun("design", "designs"),
    noun("plan", "plans"),
    noun("project", "projects"),
    noun("agreement", "agreements"),
    noun("proposal", "proposals"),
    noun("decision", "decisions"),
    noun("budget", "budgets"),
    noun("collection", "collections"),
    noun("exhibition", "exhibitions"),
    noun("painting", "paintings"),
    noun("experiment", "experiments"),
    noun("measurement", "measurements"),
    noun("sample", "samples"),
    noun("result", "results"),
    noun("problem", "problems"),
    noun("question", "questions"),
    noun("idea", "ideas"),
    noun("harvest", "harvests"),
    noun("building", "buildings"),
    noun("tower", "towers"),
    noun("wall", "walls"),
    noun("tax", "taxes"),
    noun("contract", "contracts"),
    noun("loan", "loans"),
    noun("catalog", "catalogs"),
    noun("archive", "archives"),
    noun("instrument", "instruments"),
    noun("vessel", "vessels"),
    noun("license", "licenses"),
    noun("schedule", "schedules"),
];

/// Where things happen: "along the *coast*".
pub const SITES: &[Noun] = &[
    noun("river", "rivers"),
    noun("town", "towns"),
    noun("city", "cities"),
    noun("village", "villages"),
    noun("station", "stations"),
    noun("school", "schools"),
    noun("farm", "farms"),
    noun("church", "churches"),
    noun("road", "roads"),
    noun("valley", "valleys"),
    noun("island", "islands"),
    noun("forest", "forests"),
    noun("coast", "coasts"),
    noun("region", "regions"),
    noun("district", "districts"),
    noun("hill", "hills"),
    noun("lake", "lakes"),
    noun("square", "squares"),
    noun("street", "streets"),
    noun("quarter", "quarters"),
    noun("border", "borders"),
    noun("port", "ports"),
    noun("market", "markets"),
    noun("harbor", "harbors"),
    noun("field", "fields"),
    noun("park", "parks"),
    noun("garden", "gardens"),
    noun("estate", "estates"),
    noun("county", "counties"),
    noun("bay", "bays"),
];

/// Verbs that take an object: "the council *approved* a new plan".
pub const ACTIONS: &[Verb] = &[
    verb("build", "builds", "built", "built"),
    verb("describe", "describes", "described", "described"),
    verb("publish", "publishes", "published", "published"),
    verb("study", "studies", "studied", "studied"),
    verb("measure", "measures", "measured", "measured"),
    verb("record", "records", "recorded", "recorded"),
    verb("replace", "replaces", "replaced", "replaced"),
    verb("improve", "improves", "improved", "improved"),
    verb("support", "supports", "supported", "supported"),
    verb("oppose", "opposes", "opposed", "opposed"),
    verb("approve", "approves", "approved", "approved"),
    verb("design", "designs", "designed", "designed"),
    verb("introduce", "introduces", "introduced", "introduced"),
    verb("expand", "expands", "expanded", "expanded"),
    verb("reduce", "reduces", "reduced", "reduced"),
    verb("produce", "produces", "produced", "produced"),
    verb("collect", "collects", "collected", "collected"),
    verb("review", "reviews", "reviewed", "reviewed"),
    verb("examine", "examines", "examined", "examined"),
    verb("compare", "compares", "compared", "compared"),
    verb("test", "tests", "tested", "tested"),
    verb("repair", "repairs", "repaired", "repaired"),
    verb("restore", "restores", "restored", "restored"),
    verb("visit", "visits", "visited", "visited"),
    verb("join", "joins", "joined", "joined"),
    verb("lead", "leads", "led", "led"),
    verb("organize", "organizes", "organized", "organized"),
    verb("finance", "finances", "financed", "financed"),
    verb("complete", "completes", "completed", "completed"),
    verb("protect", "protects", "protected", "protected"),
    verb("sell", "sells", "sold", "sold"),
    verb("buy", "buys", "bought", "bought"),
    verb("write", "writes", "wrote", "written"),
    verb("take", "takes", "took", "taken"),
    verb("hold", "holds", "held", "held"),
    verb("keep", "keeps", "kept", "kept"),
    verb("find", "finds", "found", "found"),
    verb("bring", "brings", "brought", "brought"),
    verb("show", "shows", "showed", "shown"),
    verb("explain", "explains", "explained", "explained"),
    verb("adopt", "adopts", "adopted", "adopted"),
    verb("manage", "manages", "managed", "managed"),
    verb("connect", "connects", "connected", "connected"),
    verb("share", "shares", "shared", "shared"),
    verb("follow", "follows", "followed", "followed"),
    verb("use", "uses", "used", "used"),
];

/// Verbs without an object, followed by a place: "the farmers *settled*
/// along the coast". The participle is never used.
pub const MOVEMENTS: &[Verb] = &[
    verb("grow", "grows", "grew", "grown"),
    verb("decline", "declines", "declined", "declined"),
    verb("remain", "remains", "remained", "remained"),
    verb("arrive", "arrives", "arrived", "arrived"),
    verb("move", "moves", "moved", "moved"),
    verb("settle", "settles", "settled", "settled"),
    verb("continue", "continues", "continued", "continued"),
    verb("work", "works", "worked", "worked"),
    verb("live", "lives", "lived", "lived"),
    verb("travel", "travels", "traveled", "traveled"),
    verb("return", "returns", "returned", "returned"),
    verb("appear", "appears", "appeared", "appeared"),
    verb("gather", "gathers", "gathered", "gathered"),
    verb("meet", "meets", "met", "met"),
    verb("spread", "spreads", "spread", "spread"),
    verb("stay", "stays", "stayed", "stayed"),
];

pub const ADJECTIVES: &[&str] = &[
    "old",
    "new",
    "small",
    "large",
    "early",
    "local",
    "national",
    "regional",
    "public",
    "private",
    "modern",
    "ancient",
    "common",
    "rare",
    "important",
    "major",
    "minor",
    "main",
    "central",
    "northern",
    "southern",
    "eastern",
    "western",
    "coastal",
    "rural",
    "urban",
    "industrial",
    "historical",
    "political",
    "economic",
    "social",
    "cultural",
    "scientific",
    "technical",
    "practical",
    "simple",
    "complex",
    "careful",
    "detailed",
    "brief",
    "narrow",
    "wide",
    "heavy",
    "quiet",
    "busy",
    "popular",
    "famous",
    "original",
    "similar",
    "different",
    "independent",
    "official",
    "annual",
    "regular",
    "successful",
    "difficult",
    "useful",
    "natural",
    "steady",
    "rapid",
    "significant",
    "limited",
    "strong",
    "open",
];

pub const ADVERBS: &[&str] = &[
    "quickly",
    "slowly",
    "gradually",
    "often",
    "rarely",
    "usually",
    "largely",
    "widely",
    "mainly",
    "finally",
    "later",
    "soon",
    "still",
    "carefully",
    "briefly",
    "openly",
    "steadily",
    "partly",
    "eventually",
    "initially",
    "generally",
    "especially",
    "recently",
];

/// Before a plural noun: "*several* reports".
pub const QUANTIFIERS: &[&str] = &[
    "many",
    "several",
    "some",
    "most",
    "a few",
    "two",
    "three",
    "four",
    "dozens of",
    "hundreds of",
    "the first",
    "the remaining",
];

pub const PREPOSITIONS: &[&str] = &[
    "in", "near", "along", "across", "through", "around", "beyond", "behind", "beside", "within",
    "outside", "towards", "from", "with", "under", "over",
];

/// Sentence openers that tie a sentence to the one before.
pub const CONNECTORS: &[&str] = &[
    "However",
    "Meanwhile",
    "As a result",
    "In addition",
    "At the same time",
    "For this reason",
    "Afterwards",
    "Despite this",
    "In practice",
    "By contrast",
    "Over time",
    "In the end",
    "For example",
];

/// Conjunctions that join a clause to a sentence: "... *because* ...".
pub const SUBORDINATORS: &[&str] = &[
    "because", "after", "before", "when", "although", "while", "until", "since", "once",
];

pub const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Units of a measurement and what they measure: "12 meters long".
pub const MEASURES: &[(&str, &str)] = &[
    ("meters", "long"),
    ("kilometers", "long"),
    ("feet", "high"),
    ("meters", "wide"),
    ("miles", "long"),
    ("meters", "deep"),
];

pub const HEADINGS: &[&str] = &[
    "History",
    "Early history",
    "Construction",
    "Operation",
    "Decline",
    "Restoration",
    "Economy",
    "Geography",
    "Climate",
    "Research",
    "Design",
    "Administration",
    "Culture",
    "Reception",
    "Later years",
    "Legacy",
    "Notable people",
    "Transport",
    "Education",
    "Events",
];

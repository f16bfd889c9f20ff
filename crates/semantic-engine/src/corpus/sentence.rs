//! One sentence of generated prose at a time.
//!
//! A sentence is one of a dozen templates (a dated event, a relative
//! clause, a list, a quotation, a measurement, ...) filled with phrases
//! drawn from the vocabulary: people and bodies act, things are acted on,
//! sites are where it happens. Subjects and verbs agree in number, "a" or
//! "an" follows the next word, dates move forward through an article, and
//! the article's subject comes back as "the canal", so the text reads, and
//! tokenizes, like an encyclopedia article.

use super::rng::SplitMix64;
use super::subject::{random_place, Subject};
use super::vocabulary as words;
use super::vocabulary::{Noun, Verb};

/// A noun phrase and whether it takes a plural verb.
struct Phrase {
    text: String,
    plural: bool,
}

impl Phrase {
    fn one(text: String) -> Self {
        Self {
            text,
            plural: false,
        }
    }
}

/// Writes the sentences of one article after another.
pub struct Writer {
    rng: SplitMix64,
    subject: Subject,
    /// The article's current year; dated sentences move it forward.
    year: usize,
}

impl Writer {
    pub fn new(seed: u64, subject: Subject) -> Self {
        let mut rng = SplitMix64::new(seed);
        let year = first_year(&mut rng);
        Self { rng, subject, year }
    }

    /// Start the next article.
    pub fn begin(&mut self, subject: Subject) {
        self.subject = subject;
        self.year = first_year(&mut self.rng);
    }

    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    pub fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.rng
    }

    /// An article's first sentence: what the subject is and where.
    pub fn opening(&mut self) -> String {
        let what = with_article(&format!("{} {}", self.adjective(), self.subject.kind.noun));
        let side = self
            .rng
            .pick(&["northern", "southern", "eastern", "western"]);
        let town = random_place(&mut self.rng);
        let near = format!("the {} {}", self.adjective(), self.noun(words::SITES).one);
        let title = self.subject.title();
        format!("The {title} is {what} in the {side} part of {town}, close to {near}.")
    }

    /// An article's second sentence: when it began, and by whom.
    pub fn origin(&mut self) -> String {
        let profession = with_article(self.rng.pick(words::PROFESSIONS));
        let founder = self.person();
        let home = random_place(&mut self.rng);
        let (origin, year) = (self.subject.kind.origin, self.year);
        format!("It was {origin} in {year} by {founder}, {profession} from {home}.")
    }

    /// Any other sentence.
    pub fn sentence(&mut self) -> String {
        match self.rng.below(100) {
            0..=13 => self.dated_event(),
            14..=25 => self.plain_event(),
            26..=34 => self.movement(),
            35..=44 => self.general_fact(),
            45..=52 => self.passive(),
            53..=60 => self.quantity(),
            61..=68 => self.relative(),
            69..=74 => self.reported(),
            75..=83 => self.connected(),
            84..=88 => self.list(),
            89..=92 => self.quotation(),
            93..=97 => self.measurement(),
            _ => self.question(),
        }
    }
}

/// Templates, each a whole sentence.
impl Writer {
    /// "In 1873, the council approved a new plan near Fenmouth."
    fn dated_event(&mut self) -> String {
        let when = self.date();
        let clause = self.past_clause();
        finished(&format!("{when}, {clause}"))
    }

    /// "The local committee repaired the old tower within the district."
    fn plain_event(&mut self) -> String {
        let clause = self.past_clause();
        finished(&clause)
    }

    /// "Several farmers settled along the northern coast in the spring of 1821."
    fn movement(&mut self) -> String {
        let who = self.actor();
        let verb = self.rng.pick(words::MOVEMENTS);
        let place = self.place();
        let mut text = format!("{} {} {place}", who.text, verb.past);
        if self.rng.chance(40) {
            text.push(' ');
            text.push_str(&self.date());
        }
        finished(&text)
    }

    /// "The canal still serves the region, and most visitors come from ..."
    fn general_fact(&mut self) -> String {
        let first = self.present_clause();
        if self.rng.chance(50) {
            return finished(&first);
        }
        let second = self.present_clause();
        let joiner = self.rng.pick(&["and", "but", "while"]);
        finished(&format!("{first}, {joiner} {second}"))
    }

    /// "The first report was published by Anna Carter in 1874."
    fn passive(&mut self) -> String {
        let thing = self.thing();
        let be = if thing.plural { "were" } else { "was" };
        let verb = self.rng.pick(words::ACTIONS);
        let by = if self.rng.chance(50) {
            self.person()
        } else {
            self.one_of(words::AGENTS).text
        };
        let year = self.next_year();
        let done = verb.participle;
        finished(&format!("{} {be} {done} by {by} in {year}", thing.text))
    }

    /// "About 1,240 visitors arrived at the harbor each year."
    fn quantity(&mut self) -> String {
        if self.rng.chance(40) {
            let percent = self.rng.between(2, 95);
            let who = self.noun(words::AGENTS).many;
            let action = self.action_past();
            return finished(&format!("About {percent} percent of the {who} {action}"));
        }
        let approx = self
            .rng
            .pick(&["About", "Nearly", "More than", "Fewer than", "Roughly"]);
        let count = self.count();
        let who = self.noun(words::AGENTS).many;
        let verb = self.rng.pick(words::MOVEMENTS).past;
        let place = self.place();
        let period = self
            .rng
            .pick(&["year", "month", "week", "season", "decade"]);
        finished(&format!(
            "{approx} {count} {who} {verb} {place} each {period}"
        ))
    }

    /// "The company that had built the station moved to Kelford", or
    /// "Anna Carter, who had built the station, moved to Kelford".
    fn relative(&mut self) -> String {
        let (who, comma) = if self.rng.chance(30) {
            (format!("{}, who", self.person()), ",")
        } else {
            (format!("{} that", self.one_of(words::AGENTS).text), "")
        };
        let inner = self.action_past();
        let verb = self.rng.pick(words::MOVEMENTS).past;
        let place = self.place();
        finished(&format!("{who} had {inner}{comma} {verb} {place}"))
    }

    /// "According to Hugh Santos, the council lowered prices because ..."
    fn reported(&mut self) -> String {
        let source = if self.rng.chance(60) {
            self.person()
        } else {
            let thing = self.noun(words::THINGS).one;
            with_article(&format!("{} {thing}", self.adjective()))
        };
        let first = self.past_clause();
        let why = self.rng.pick(words::SUBORDINATORS);
        let second = self.past_clause();
        finished(&format!("According to {source}, {first} {why} {second}"))
    }

    /// "However, the railway closed ...", "Although ..., ...".
    fn connected(&mut self) -> String {
        if self.rng.chance(30) {
            let why = self.rng.pick(words::SUBORDINATORS);
            let first = self.past_clause();
            let second = self.past_clause();
            return finished(&format!("{why} {first}, {second}"));
        }
        let connector = self.rng.pick(words::CONNECTORS);
        let clause = self.past_clause();
        finished(&format!("{connector}, {clause}"))
    }

    /// "The collection included a brief letter, two maps, and the old engine."
    fn list(&mut self) -> String {
        let whole = if self.rng.chance(50) {
            self.subject.the_kind()
        } else {
            format!("the {}", self.noun(words::THINGS).one)
        };
        let n = self.rng.between(3, 4);
        let items: Vec<String> = (0..n).map(|_| self.thing().text).collect();
        let verb = self
            .rng
            .pick(&["included", "contained", "listed", "covered"]);
        let (last, rest) = items.split_last().expect("three or four items");
        finished(&format!("{whole} {verb} {}, and {last}", rest.join(", ")))
    }

    /// `Alice Novak later called the mill "a quiet and useful place."`
    fn quotation(&mut self) -> String {
        let who = self.person();
        let what = self.subject.the_kind();
        let (a, b) = (self.adjective(), self.adjective());
        let site = self.noun(words::SITES).one;
        let description = with_article(&format!("{a} and {b} {site}"));
        let (verb, as_) =
            self.rng
                .pick(&[("called", ""), ("described", "as "), ("remembered", "as ")]);
        format!("{who} later {verb} {what} {as_}\"{description}.\"")
    }

    /// "The main wall is 12.5 meters long."
    fn measurement(&mut self) -> String {
        let adjective = self.adjective();
        let part = self.noun(words::THINGS).one;
        let (unit, dimension) = self.rng.pick(words::MEASURES);
        let whole = self.rng.between(2, 400);
        let tenth = self.rng.below(10);
        let tense = self.rng.pick(&["is", "was"]);
        finished(&format!(
            "The {adjective} {part} {tense} {whole}.{tenth} {unit} {dimension}"
        ))
    }

    /// "Why did the council close the school in 1902?"
    fn question(&mut self) -> String {
        let who = self.actor().text;
        let verb = self.rng.pick(words::ACTIONS).base;
        let object = self.thing().text;
        let year = self.next_year();
        capitalized(&format!("why did {who} {verb} {object} in {year}?"))
    }
}

/// Clauses and phrases.
impl Writer {
    /// "the council approved a new plan near Fenmouth"
    fn past_clause(&mut self) -> String {
        let who = self.actor().text;
        let action = self.action_past();
        format!("{who} {action}")
    }

    /// "most visitors still come from the coast", with agreement.
    fn present_clause(&mut self) -> String {
        let who = self.actor();
        let adverb = if self.rng.chance(35) {
            format!("{} ", self.rng.pick(words::ADVERBS))
        } else {
            String::new()
        };
        let form = |v: Verb| if who.plural { v.base } else { v.third };
        let rest = if self.rng.chance(50) {
            let verb = form(self.rng.pick(words::MOVEMENTS));
            format!("{verb} {}", self.place())
        } else {
            let verb = form(self.rng.pick(words::ACTIONS));
            format!("{verb} {}", self.thing().text)
        };
        format!("{} {adverb}{rest}", who.text)
    }

    /// "approved a new plan", sometimes followed by a place.
    fn action_past(&mut self) -> String {
        let verb = self.rng.pick(words::ACTIONS).past;
        let object = self.thing().text;
        if self.rng.chance(35) {
            format!("{verb} {object} {}", self.place())
        } else {
            format!("{verb} {object}")
        }
    }

    /// Who does something: the article's subject, a person, or people.
    fn actor(&mut self) -> Phrase {
        match self.rng.below(10) {
            0 => Phrase::one(self.subject.the_kind()),
            1 | 2 => Phrase::one(self.person()),
            3..=5 => self.many_of(words::AGENTS),
            _ => self.one_of(words::AGENTS),
        }
    }

    /// What something is done to.
    fn thing(&mut self) -> Phrase {
        match self.rng.below(20) {
            0 => Phrase::one(self.subject.the_kind()),
            1..=6 => self.many_of(words::THINGS),
            _ => self.one_of(words::THINGS),
        }
    }

    /// "the old tower", "a detailed report", "the council of Fenmouth".
    fn one_of(&mut self, nouns: &[Noun]) -> Phrase {
        let noun = self.noun(nouns).one;
        let text = match self.rng.below(5) {
            0 => format!("the {noun}"),
            1 => format!("the {} {noun}", self.adjective()),
            2 => with_article(&format!("{} {noun}", self.adjective())),
            3 => with_article(noun),
            _ => format!("the {noun} of {}", random_place(&mut self.rng)),
        };
        Phrase::one(text)
    }

    /// "several reports", "hundreds of local workers".
    fn many_of(&mut self, nouns: &[Noun]) -> Phrase {
        let noun = self.noun(nouns).many;
        let quantifier = self.rng.pick(words::QUANTIFIERS);
        let text = if self.rng.chance(40) {
            format!("{quantifier} {} {noun}", self.adjective())
        } else {
            format!("{quantifier} {noun}")
        };
        Phrase { text, plural: true }
    }

    /// "near Fenmouth", "along the northern coast", "through the valley".
    fn place(&mut self) -> String {
        let preposition = self.rng.pick(words::PREPOSITIONS);
        let site = self.noun(words::SITES).one;
        match self.rng.below(3) {
            0 => format!("{preposition} {}", random_place(&mut self.rng)),
            1 => format!("{preposition} the {} {site}", self.adjective()),
            _ => format!("{preposition} the {site}"),
        }
    }

    /// "in 1873", "during the winter of 1880", "by March 1902".
    fn date(&mut self) -> String {
        let year = self.next_year();
        match self.rng.below(5) {
            0 | 1 => format!("in {year}"),
            2 => {
                let season = self.rng.pick(&["spring", "summer", "autumn", "winter"]);
                format!("during the {season} of {year}")
            }
            3 => format!("by {} {year}", self.rng.pick(words::MONTHS)),
            _ => {
                let day = self.rng.between(1, 28);
                format!("on {day} {} {year}", self.rng.pick(words::MONTHS))
            }
        }
    }

    /// "Margaret Okafor".
    fn person(&mut self) -> String {
        let first = self.rng.pick(words::FIRST_NAMES);
        let last = self.rng.pick(words::LAST_NAMES);
        format!("{first} {last}")
    }

    /// A count as an article would print it: "12", "340", "4,500".
    fn count(&mut self) -> String {
        let n = match self.rng.below(3) {
            0 => self.rng.between(3, 99),
            1 => self.rng.between(100, 999),
            _ => self.rng.between(100, 9_000) * 10,
        };
        with_thousands(n)
    }

    /// The article's next year: the same or a few years later.
    fn next_year(&mut self) -> usize {
        self.year += self.rng.below(4);
        self.year
    }

    fn noun(&mut self, nouns: &[Noun]) -> Noun {
        self.rng.pick(nouns)
    }

    fn adjective(&mut self) -> &'static str {
        self.rng.pick(words::ADJECTIVES)
    }
}

/// An article's first year: 1650 to 1899.
fn first_year(rng: &mut SplitMix64) -> usize {
    rng.between(1650, 1899)
}

/// Capitalize the first letter and end with a full stop.
fn finished(text: &str) -> String {
    let mut s = capitalized(text);
    s.push('.');
    s
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// "a" or "an" before a phrase, by how its first word sounds.
fn with_article(phrase: &str) -> String {
    let sounds_like_you = ["uni", "use", "usu"].iter().any(|p| phrase.starts_with(p));
    let article = match phrase.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') if !sounds_like_you => "an",
        _ => "a",
    };
    format!("{article} {phrase}")
}

/// "4500" as "4,500".
fn with_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_follow_the_next_word() {
        assert_eq!(with_article("old tower"), "an old tower");
        assert_eq!(with_article("useful map"), "a useful map");
        assert_eq!(with_article("university"), "a university");
        assert_eq!(with_article("urban road"), "an urban road");
        assert_eq!(with_article("large farm"), "a large farm");
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(with_thousands(7), "7");
        assert_eq!(with_thousands(999), "999");
        assert_eq!(with_thousands(4_500), "4,500");
        assert_eq!(with_thousands(90_000), "90,000");
        assert_eq!(with_thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn every_template_writes_one_finished_sentence() {
        let mut w = Writer::new(3, Subject::for_variant(0));
        for _ in 0..2_000 {
            let s = w.sentence();
            assert!(s.starts_with(|c: char| c.is_ascii_uppercase()), "{s}");
            let end = s.ends_with('.') || s.ends_with('?') || s.ends_with(".\"");
            assert!(end, "{s}");
            assert!(!s.contains("  ") && !s.contains(" ,"), "{s}");
            // Only names, places and a sentence's first word are capitalized.
            let n = s.split(' ').count();
            assert!((5..=45).contains(&n), "{n} words: {s}");
        }
    }

    #[test]
    fn years_move_forward_within_an_article() {
        let mut w = Writer::new(5, Subject::for_variant(1));
        let mut last = 0;
        for _ in 0..50 {
            let year = w.next_year();
            assert!(year >= last);
            last = year;
        }
    }
}

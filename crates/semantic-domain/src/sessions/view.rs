//! What each participant sees, rendered as the chat messages its prompt is
//! made of.
//!
//! A participant's view: its system prompt, then the transcript as it may
//! see it — its own replies as `assistant` messages, exactly as generated;
//! everyone else's (replies, injected messages, whispers addressed to it)
//! as `user` text attributed by name. Whispers to others and other
//! participants' moderator choices are left out.
//!
//! The rule that makes the cache work: **a participant's view only grows
//! at its end.** Its prompt for a turn is its view; after its reply, the
//! view is that prompt plus the reply plus whatever came later, so the
//! next prompt's tokens extend the tokens its KV holds and only the new
//! messages are prefilled. Two choices keep it so:
//! - Consecutive messages from others merge into one `user` message. Such
//!   a run is always closed by the participant's own reply before its
//!   next prompt (a run is rendered only when the participant speaks), so
//!   a merged message never changes once rendered; and the view
//!   alternates user/assistant as strict chat templates require.
//! - Within a broadcast round (every participant answered the same
//!   prompt, none saw the others' answers), a participant's own answer is
//!   rendered first and the others' after it, in every later view too.

use crate::chat::ChatMessage;
use crate::grammar::Grammar;

use super::model::{Entry, EntryKind, Participant, Session};

/// Participant `index`'s view of the whole transcript (its prompt for its
/// next turn; the template adds the assistant's generation prompt).
pub fn view(session: &Session, index: usize) -> Vec<ChatMessage> {
    let mut builder = Builder::new(system_prompt(session, index));
    let me = &session.participants[index].id;
    let mut rest = session.transcript.as_slice();
    while let Some(first) = rest.first() {
        let run = batch_run(rest);
        let (batch, tail) = rest.split_at(run.max(1));
        rest = tail;
        if run == 0 {
            render(session, me, first, &mut builder);
            continue;
        }
        // A broadcast round: own answer first, then the others in order.
        let own = |e: &&Entry| matches!(&e.kind, EntryKind::Reply { speaker, .. } if speaker == me);
        for entry in batch.iter().filter(own) {
            render(session, me, entry, &mut builder);
        }
        for entry in batch.iter().filter(|e| !own(e)) {
            render(session, me, entry, &mut builder);
        }
    }
    builder.finish()
}

/// The moderator's prompt to choose the next speaker among `options`: its
/// view, then the question. Once the choice is recorded, its view renders
/// this same question before the answer, so this prompt stays a prefix.
pub fn choice_prompt(session: &Session, moderator: usize, options: &[usize]) -> Vec<ChatMessage> {
    let mut messages = view(session, moderator);
    let question = choice_question(session.participants.iter(), options.iter().copied());
    match messages.last_mut() {
        Some(last) if last.role == crate::chat::Role::User => {
            last.content.push_str(SEPARATOR);
            last.content.push_str(&question);
        }
        _ => messages.push(ChatMessage::user(question)),
    }
    messages
}

/// The grammar a moderator's answer must match: exactly one option's id.
pub fn choice_grammar(session: &Session, options: &[usize]) -> Grammar {
    // Ids are `[A-Za-z0-9._-]` (checked at creation): nothing to escape.
    let alternatives: Vec<String> = options
        .iter()
        .filter_map(|&i| session.participants.get(i))
        .map(|p| format!("\"{}\"", p.id))
        .collect();
    Grammar::new(format!("root ::= {}\n", alternatives.join(" | ")))
}

/// Which option a moderator's answer names, if any.
pub fn parse_choice(session: &Session, options: &[usize], answer: &str) -> Option<usize> {
    let answer = answer.trim();
    options
        .iter()
        .copied()
        .find(|&i| session.participants.get(i).is_some_and(|p| p.id == answer))
}

/// A reply as the others see it: trimmed, without the `Name:` the model
/// may have started it with (the others' views add the name themselves).
pub fn clean_reply(text: &str, speaker: &Participant) -> String {
    let trimmed = text.trim();
    for prefix in [&speaker.name, &speaker.id] {
        if let Some(rest) = trimmed
            .strip_prefix(prefix.as_str())
            .and_then(|r| r.strip_prefix(':'))
        {
            return rest.trim().to_owned();
        }
    }
    trimmed.to_owned()
}

/// The participant's system prompt: the client's, else one written from
/// its name, role and the others' names.
pub fn system_prompt(session: &Session, index: usize) -> String {
    let me = &session.participants[index];
    if let Some(prompt) = &me.system_prompt {
        return prompt.clone();
    }
    let others: Vec<&str> = session
        .participants
        .iter()
        .filter(|p| p.id != me.id)
        .map(|p| p.name.as_str())
        .collect();
    let mut prompt = format!("You are {}.", me.name);
    if let Some(role) = &me.role {
        prompt.push(' ');
        prompt.push_str(role);
    }
    let with = if others.is_empty() {
        "the user".to_owned()
    } else {
        others.join(", ")
    };
    prompt.push_str(&format!(
        " You are in a conversation with {with}. Their messages start with their name. \
         Speak only as {}, briefly.",
        me.name
    ));
    prompt
}

/// Between merged messages from others.
const SEPARATOR: &str = "\n\n";

fn choice_question<'a>(
    participants: impl Iterator<Item = &'a Participant> + Clone,
    options: impl Iterator<Item = usize>,
) -> String {
    let names: Vec<String> = options
        .filter_map(|i| participants.clone().nth(i))
        .map(|p| {
            if p.name == p.id {
                p.id.clone()
            } else {
                format!("{} ({})", p.id, p.name)
            }
        })
        .collect();
    format!(
        "Who should speak next? Answer with exactly one of: {}.",
        names.join(", ")
    )
}

/// How many entries from the start form one broadcast batch (0: the first
/// entry is not part of one).
fn batch_run(entries: &[Entry]) -> usize {
    let batch_of = |e: &Entry| match &e.kind {
        EntryKind::Reply { batch, .. } => *batch,
        _ => None,
    };
    let Some(batch) = entries.first().and_then(batch_of) else {
        return 0;
    };
    entries
        .iter()
        .take_while(|e| batch_of(e) == Some(batch))
        .count()
}

fn render(session: &Session, me: &str, entry: &Entry, out: &mut Builder) {
    match &entry.kind {
        EntryKind::Message { name, text } => match name {
            Some(name) => out.user(format!("{name}: {text}")),
            None => out.user(text.clone()),
        },
        EntryKind::Whisper { name, to, text } if to == me => {
            let from = name.as_deref().unwrap_or("the user");
            out.user(format!("(privately, from {from}) {text}"));
        }
        EntryKind::Whisper { .. } => {}
        EntryKind::Reply { speaker, text, .. } if speaker == me => out.assistant(text.clone()),
        EntryKind::Reply {
            speaker, cleaned, ..
        } => {
            let name = session
                .participant(speaker)
                .map_or(speaker.as_str(), |(_, p)| p.name.as_str());
            out.user(format!("{name}: {cleaned}"));
        }
        EntryKind::Choice {
            moderator,
            options,
            chose,
        } if moderator == me => {
            let picked = options
                .iter()
                .filter_map(|id| session.participant(id).map(|(i, _)| i));
            out.user(choice_question(session.participants.iter(), picked));
            out.assistant(chose.clone());
        }
        EntryKind::Choice { .. } => {}
    }
}

/// Messages with runs of others' text merged into one `user` message.
struct Builder {
    messages: Vec<ChatMessage>,
    pending: Vec<String>,
}

impl Builder {
    fn new(system: String) -> Self {
        Self {
            messages: vec![ChatMessage::system(system)],
            pending: Vec::new(),
        }
    }

    fn user(&mut self, text: String) {
        self.pending.push(text);
    }

    fn assistant(&mut self, text: String) {
        self.flush();
        self.messages.push(ChatMessage::assistant(text));
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let text = self.pending.join(SEPARATOR);
            self.pending.clear();
            self.messages.push(ChatMessage::user(text));
        }
    }

    fn finish(mut self) -> Vec<ChatMessage> {
        self.flush();
        self.messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Role;
    use crate::sessions::model::tests::spec;
    use crate::sessions::model::TurnUsage;
    use crate::sessions::speakers::NextTurn;

    /// What each participant's KV holds after its last turn: the prompt
    /// and the reply.
    type Held = Vec<Option<Vec<ChatMessage>>>;

    fn session(ids: &[&str], topology: &str) -> Session {
        let mut s = spec(ids, topology);
        if topology == "moderated" {
            s.moderator = Some(ids[0].to_owned());
        }
        Session::create("sess_v".into(), 0, s).unwrap()
    }

    /// Check that `prompt` extends what `who` held, then hold prompt + reply.
    fn speak(s: &mut Session, held: &mut Held, who: usize, reply: &str, batch: Option<u32>) {
        let prompt = view(s, who);
        check_extends(held, who, &prompt);
        s.add_reply(0, who, reply.into(), TurnUsage::default(), batch)
            .unwrap();
        let mut kv = prompt;
        kv.push(ChatMessage::assistant(reply));
        held[who] = Some(kv);
    }

    fn check_extends(held: &Held, who: usize, prompt: &[ChatMessage]) {
        if let Some(kv) = &held[who] {
            assert!(
                prompt.len() >= kv.len() && prompt[..kv.len()] == kv[..],
                "participant {who}'s prompt does not extend its cache:\n{kv:#?}\n---\n{prompt:#?}"
            );
        }
    }

    #[test]
    fn every_prompt_extends_the_speakers_previous_prompt_and_reply() {
        let mut s = session(&["a", "b", "c"], "round_robin");
        let mut held: Held = vec![None; 3];
        for round in 0..3 {
            for who in 0..3 {
                speak(
                    &mut s,
                    &mut held,
                    who,
                    &format!(" r{round} from {who} "),
                    None,
                );
                if who == 1 {
                    s.add_message(0, Some("Host".into()), "keep going".into(), None)
                        .unwrap();
                    s.add_message(0, None, "secret".into(), Some("c")).unwrap();
                }
            }
        }
        // The same speaker twice in a row still extends.
        speak(&mut s, &mut held, 0, "again", None);
        speak(&mut s, &mut held, 0, "and again", None);
        let a = view(&s, 0);
        assert_eq!(a[0].role, Role::System);
        assert!(
            a.iter().all(|m| !m.content.contains("secret")),
            "a whisper to c"
        );
        assert!(view(&s, 2)
            .iter()
            .any(|m| m.content.contains("(privately, from the user) secret")));
        // Others' runs are merged and attributed; one's own reply is raw.
        assert!(a.iter().any(|m| m.role == Role::User
            && m.content == "b: r0 from 1\n\nHost: keep going\n\nc: r0 from 2"));
        assert!(a
            .iter()
            .any(|m| m.role == Role::Assistant && m.content == " r0 from 0 "));
    }

    /// The same through a ChatML template (SmolLM2's, the test model's):
    /// the rendered text of each prompt starts with the previous prompt's
    /// text plus the reply, so the tokens extend too.
    #[test]
    fn rendered_prompts_extend_through_the_chat_template() {
        let template = crate::chat_template::ChatTemplate::chatml("", "<|im_end|>");
        let render = |m: &[ChatMessage]| template.render(m, None, true).unwrap();
        let mut s = session(&["a", "b", "c", "d"], "round_robin");
        let mut held: Vec<Option<String>> = vec![None; 4];
        for round in 0..3 {
            for (who, kv) in held.iter_mut().enumerate() {
                let text = render(&view(&s, who));
                if let Some(kv) = kv {
                    assert!(text.starts_with(kv.as_str()), "{kv:?}\n---\n{text:?}");
                }
                let reply = format!("{}: point {round}", s.participants[who].name);
                *kv = Some(format!("{text}{reply}"));
                s.add_reply(0, who, reply, TurnUsage::default(), None)
                    .unwrap();
            }
            s.add_message(0, None, format!("now round {}", round + 1), Some("b"))
                .unwrap();
        }
    }

    #[test]
    fn broadcast_answers_see_the_same_prompt_and_still_extend() {
        let mut s = session(&["a", "b", "c"], "broadcast");
        let mut held: Held = vec![None; 3];
        for round in 0..3 {
            s.add_message(0, None, format!("question {round}"), None)
                .unwrap();
            let prompts: Vec<_> = (0..3).map(|i| view(&s, i)).collect();
            let batch = s.open_batch();
            for (who, prompt) in prompts.into_iter().enumerate() {
                check_extends(&held, who, &prompt);
                let reply = format!("answer {round} of {who}");
                s.add_reply(0, who, reply.clone(), TurnUsage::default(), Some(batch))
                    .unwrap();
                let mut kv = prompt;
                kv.push(ChatMessage::assistant(reply));
                held[who] = Some(kv);
            }
        }
        let last = |who: usize| view(&s, who).last().unwrap().content.clone();
        assert_eq!(last(1), "a: answer 2 of 0\n\nc: answer 2 of 2");
    }

    #[test]
    fn a_moderators_choices_extend_its_view_and_stay_its_own() {
        let mut s = session(&["m", "a", "b"], "moderated");
        let mut held: Held = vec![None; 3];
        for _ in 0..4 {
            let NextTurn::Choose { moderator, options } = s.next_turn(None).unwrap() else {
                panic!("two speakers: always a choice")
            };
            let prompt = choice_prompt(&s, moderator, &options);
            check_extends(&held, moderator, &prompt);
            assert!(prompt
                .last()
                .unwrap()
                .content
                .ends_with("exactly one of: a, b."));
            let grammar = choice_grammar(&s, &options);
            assert_eq!(grammar.gbnf, "root ::= \"a\" | \"b\"\n");
            let chosen = parse_choice(&s, &options, "b").unwrap();
            s.add_choice(0, moderator, &options, "b".into());
            let mut kv = prompt;
            kv.push(ChatMessage::assistant("b"));
            held[moderator] = Some(kv);
            speak(&mut s, &mut held, chosen, "my point", None);
        }
        assert!(view(&s, 1)
            .iter()
            .all(|m| !m.content.contains("Who should speak")));
        assert_eq!(parse_choice(&s, &[1, 2], "m"), None, "not an option");
    }

    #[test]
    fn cleaning_drops_the_speakers_own_name() {
        let s = session(&["alice"], "round_robin");
        let p = &s.participants[0];
        assert_eq!(clean_reply("  alice: Hello there \n", p), "Hello there");
        assert_eq!(clean_reply("Bob: hi", p), "Bob: hi");
    }
}

//! Generated prose: encyclopedia-like articles, one text per variant.
//!
//! Benchmarks and tests need realistic, repeatable prompts of any length
//! without shipping a corpus, so the text is written on the fly: a title,
//! an opening paragraph, then sections of a heading and paragraphs of 3 to
//! 7 sentences, article after article until the text is long enough. The
//! variant seeds everything, so a variant's text is the same on every
//! machine and in every build, and a longer text of a variant starts with
//! every shorter one. Each variant opens with its own title (see
//! [`DISTINCT_OPENINGS`](super::subject::DISTINCT_OPENINGS)), so variants
//! share no prefix.

use super::sentence::Writer;
use super::subject::Subject;
use super::vocabulary::HEADINGS;

/// Mixed into the variant to seed its stream (any constant would do; it
/// keeps variant 0 off SplitMix64's all-zero seed).
const SEED_BASE: u64 = 0x5E3A_471C_C0B9_0A11;

/// The text of `variant`: whole paragraphs until at least `min_chars`
/// characters (bytes: it is ASCII). No trailing newline.
pub fn generate(variant: usize, min_chars: usize) -> String {
    let mut writer = Writer::new(SEED_BASE ^ variant as u64, Subject::for_variant(variant));
    let mut text = String::with_capacity(min_chars + 4_096);
    loop {
        write_article(&mut writer, &mut text, min_chars);
        if text.len() >= min_chars {
            return text;
        }
        let next = Subject::random(writer.rng());
        writer.begin(next);
        text.push_str("\n\n");
    }
}

/// One article, or as much of it as fills `text` to `min_chars`. Checking
/// the length only between paragraphs, and without drawing randomness,
/// keeps shorter texts prefixes of longer ones.
fn write_article(writer: &mut Writer, text: &mut String, min_chars: usize) {
    text.push_str(&writer.subject().title());
    text.push_str("\n\n");
    let opening = [writer.opening(), writer.origin()];
    write_paragraph(writer, text, &opening);
    let sections = writer.rng().between(4, 8);
    let mut headings = HEADINGS.to_vec();
    for _ in 0..sections {
        if text.len() >= min_chars {
            return;
        }
        let heading = headings.remove(writer.rng().below(headings.len()));
        text.push_str("\n\n");
        text.push_str(heading);
        let paragraphs = writer.rng().between(1, 4);
        for _ in 0..paragraphs {
            if text.len() >= min_chars {
                return;
            }
            text.push_str("\n\n");
            write_paragraph(writer, text, &[]);
        }
    }
}

/// `first` sentences, then generated ones up to 3 to 7 in all.
fn write_paragraph(writer: &mut Writer, text: &mut String, first: &[String]) {
    let n = writer.rng().between(3, 7).max(first.len() + 1);
    for i in 0..n {
        if i > 0 {
            text.push(' ');
        }
        match first.get(i) {
            Some(s) => text.push_str(s),
            None => text.push_str(&writer.sentence()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: usize = 300_000;

    fn words(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    fn common_words(a: &str, b: &str) -> usize {
        words(a)
            .iter()
            .zip(words(b))
            .take_while(|(x, y)| *x == y)
            .count()
    }

    #[test]
    fn a_variant_is_always_the_same_text() {
        assert_eq!(generate(3, 50_000), generate(3, 50_000));
        assert_ne!(generate(3, 5_000), generate(4, 5_000));
    }

    #[test]
    fn shorter_texts_are_prefixes_of_longer_ones() {
        let long = generate(7, 80_000);
        for n in [1, 500, 10_000, 40_000] {
            let short = generate(7, n);
            assert!(short.len() >= n);
            assert!(long.starts_with(&short), "generate(7, {n}) is no prefix");
        }
    }

    #[test]
    fn variants_share_no_prefix_beyond_a_word() {
        let texts: Vec<String> = (0..120).map(|v| generate(v, 2_000)).collect();
        for (i, a) in texts.iter().enumerate() {
            for b in &texts[i + 1..] {
                assert!(common_words(a, b) <= 1, "{}\n---\n{}", &a[..80], &b[..80]);
            }
        }
        // Past the distinct openings titles repeat, but the streams differ.
        let far = super::super::DISTINCT_OPENINGS;
        assert!(common_words(&generate(5, 2_000), &generate(far + 5, 2_000)) <= 12);
    }

    #[test]
    fn texts_are_long_enough_for_long_prompts() {
        let text = generate(0, LONG);
        assert!(text.len() >= LONG);
        assert!(text.len() < LONG + 2_000, "stops at the next paragraph");
        // At 1.3 tokens a word (SmolLM2's tokenizer), 45K words are ~60K tokens.
        assert!(words(&text).len() >= 45_000, "{}", words(&text).len());
    }

    #[test]
    fn text_is_printable_ascii_in_paragraphs_of_sentences() {
        let text = generate(11, 100_000);
        assert!(text
            .bytes()
            .all(|b| b == b'\n' || (b' '..=b'~').contains(&b)));
        assert!(!text.contains("  ") && !text.contains("\n\n\n") && !text.ends_with('\n'));
        for line in text.lines().filter(|l| !l.is_empty()) {
            assert_eq!(line.trim(), line, "stray spaces: {line:?}");
            assert!(line.starts_with(|c: char| c.is_ascii_uppercase()), "{line}");
            let heading = line.split(' ').count() <= 4;
            let ends = line.ends_with('.') || line.ends_with('?') || line.ends_with(".\"");
            assert!(heading || ends, "unfinished line: {line}");
        }
        for mark in [" ,", " .", " ?", ",,", "..", ". ."] {
            assert!(!text.contains(mark), "{mark:?} in the text");
        }
        // Each sentence after the first in a paragraph starts with a capital.
        for (i, _) in text.match_indices(". ") {
            let next = text[i + 2..].chars().next().unwrap();
            assert!(next.is_ascii_uppercase(), "{}", &text[i..i + 40]);
        }
    }

    #[test]
    fn word_use_looks_like_english() {
        let text = generate(2, 100_000);
        let all = words(&text);
        let the = all.iter().filter(|w| w.eq_ignore_ascii_case("the")).count();
        let share = the as f64 / all.len() as f64;
        // "the" is about 6% of running English text.
        assert!(
            (0.03..0.15).contains(&share),
            "'the' is {share:.3} of words"
        );
        let distinct: std::collections::HashSet<&str> = all.iter().copied().collect();
        assert!(
            distinct.len() > 600,
            "only {} distinct words",
            distinct.len()
        );
        let letters: usize = all.iter().map(|w| w.len()).sum();
        let mean = letters as f64 / all.len() as f64;
        assert!((4.0..7.0).contains(&mean), "mean word length {mean:.2}");
        assert!(text.contains(", ") && text.bytes().any(|b| b.is_ascii_digit()));
    }
}

//! Benchmark prompts: generated prose, or the .txt files of `--corpus DIR`.
//!
//! Benchmarks must be realistic and repeatable, so prompts are cut from
//! English prose rather than random tokens. By default the prose is
//! generated (`generator`): deterministic, as long as asked for, and part
//! of the project, so a fresh clone needs no data. A user may pass a folder
//! of their own .txt files instead. Either way each *variant* starts
//! somewhere else (its own generated article, or another file), so variants
//! share no prefix and a prefix cache cannot make one variant cheaper.

mod generator;
mod rng;
mod sentence;
mod subject;
mod vocabulary;

use std::path::{Path, PathBuf};

use semantic_domain::TokenId;

use crate::LoadedModel;

pub use subject::DISTINCT_OPENINGS;

/// Characters of generated text [`Corpus::text`] returns per variant:
/// about 68K tokens with SmolLM2's BPE tokenizer (4.4 characters a token,
/// `tests/corpus.rs`), more than the longest benchmark context. Generating
/// it takes a few ms.
pub const GENERATED_CHARS: usize = 300_000;

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read the corpus directory {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the corpus directory {} has no .txt files", .0.display())]
    Empty(PathBuf),
    #[error("the corpus holds only {have} tokens; {want} were asked for")]
    TooShort { have: usize, want: usize },
}

/// Where prompts are cut from.
pub struct Corpus {
    source: Source,
}

enum Source {
    /// The built-in generated prose.
    Generated,
    /// The files of a directory, in file-name order.
    Files(Vec<String>),
}

impl Corpus {
    /// The built-in generated prose (the default of every benchmark).
    pub fn generated() -> Self {
        Self {
            source: Source::Generated,
        }
    }

    /// What a command's optional `--corpus DIR` asks for: that folder's
    /// files, else the generated prose. Every benchmark gets its corpus here.
    pub fn from_option(dir: Option<&Path>) -> Result<Self, CorpusError> {
        match dir {
            Some(dir) => Self::load(dir),
            None => Ok(Self::generated()),
        }
    }

    /// The `.txt` files of a folder, in file-name order.
    pub fn load(dir: &Path) -> Result<Self, CorpusError> {
        let read_err = |source| CorpusError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        let texts = files
            .iter()
            .map(std::fs::read_to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(read_err)?;
        if texts.is_empty() {
            return Err(CorpusError::Empty(dir.to_owned()));
        }
        Ok(Self {
            source: Source::Files(texts),
        })
    }

    /// The text of `variant`: its generated article and the ones after it
    /// ([`GENERATED_CHARS`] long), or the files starting at file `variant`,
    /// wrapping around.
    pub fn text(&self, variant: usize) -> String {
        match &self.source {
            Source::Generated => generator::generate(variant, GENERATED_CHARS),
            Source::Files(texts) => {
                let n = texts.len();
                (0..n)
                    .map(|i| texts[(variant + i) % n].as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n")
            }
        }
    }

    /// Exactly `n` tokens of the text of `variant`, from its start.
    pub fn tokens(
        &self,
        model: &LoadedModel,
        n: usize,
        variant: usize,
    ) -> Result<Vec<TokenId>, CorpusError> {
        let mut tokens = match &self.source {
            Source::Generated => generated_tokens(model, n, variant),
            Source::Files(_) => model.tokenize(&self.text(variant)),
        };
        if tokens.len() < n {
            return Err(CorpusError::TooShort {
                have: tokens.len(),
                want: n,
            });
        }
        tokens.truncate(n);
        Ok(tokens)
    }

    /// A text that holds at least `n` tokens for `model` (and a few more):
    /// just enough generated prose (a longer text of a variant starts with
    /// every shorter one, so the longest text asked for serves every
    /// model), or all of the folder's files. `bench quality` evaluates this
    /// exact text and can write it out for other tools.
    pub fn text_for_tokens(
        &self,
        model: &LoadedModel,
        n: usize,
        variant: usize,
    ) -> Result<String, CorpusError> {
        let (text, have) = match &self.source {
            Source::Generated => {
                let (text, tokens) = generated(model, n, variant);
                (text, tokens.len())
            }
            Source::Files(_) => {
                let text = self.text(variant);
                let have = model.tokenize(&text).len();
                (text, have)
            }
        };
        if have < n {
            return Err(CorpusError::TooShort { have, want: n });
        }
        Ok(text)
    }
}

/// Tokens of just enough generated text for `n` (a 2K-token prompt need
/// not tokenize 300K characters); see [`generated`].
fn generated_tokens(model: &LoadedModel, n: usize, variant: usize) -> Vec<TokenId> {
    generated(model, n, variant).1
}

/// Just enough generated text of `variant` for `n` tokens, and its tokens:
/// the text grows until it holds `n` and a few more (the tokens at the cut
/// may merge differently in a longer text, so they are dropped). Gives up
/// (too few) past 64 characters a token.
fn generated(model: &LoadedModel, n: usize, variant: usize) -> (String, Vec<TokenId>) {
    const SPARE: usize = 16;
    let mut chars = (n + SPARE) * 5 + 256;
    loop {
        let text = generator::generate(variant, chars);
        let tokens = model.tokenize(&text);
        if tokens.len() >= n + SPARE || chars > (n + SPARE) * 64 {
            return (text, tokens);
        }
        chars *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_is_the_default_and_each_variant_its_own_text() {
        let corpus = Corpus::from_option(None).unwrap();
        let a = corpus.text(0);
        assert!(a.len() >= GENERATED_CHARS);
        assert_eq!(a, generator::generate(0, GENERATED_CHARS));
        assert_ne!(a[..100], corpus.text(1)[..100]);
    }

    #[test]
    fn a_corpus_folder_gives_its_txt_files_in_name_order() {
        let dir = std::env::temp_dir().join(format!("semantic-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.txt"), "Second.").unwrap();
        std::fs::write(dir.join("a.txt"), "First.").unwrap();
        std::fs::write(dir.join("notes.md"), "Ignored.").unwrap();
        let corpus = Corpus::from_option(Some(&dir)).unwrap();
        assert_eq!(corpus.text(0), "First.\n\nSecond.");
        assert_eq!(corpus.text(1), "Second.\n\nFirst.");
        std::fs::remove_file(dir.join("a.txt")).unwrap();
        std::fs::remove_file(dir.join("b.txt")).unwrap();
        let empty = Corpus::load(&dir);
        assert!(matches!(empty, Err(CorpusError::Empty(_))));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(Corpus::load(&dir), Err(CorpusError::Read { .. })));
    }
}

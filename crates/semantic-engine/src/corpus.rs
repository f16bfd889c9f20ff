//! Benchmark prompts from the shared text corpus.
//!
//! Benchmarks must be realistic and repeatable, so prompts are cut from a
//! fixed set of encyclopedia articles (`../shared/corpus/*.txt`) rather than
//! random tokens. Each *variant* starts in a different article, so variants
//! share no prefix (a prefix cache cannot make one variant cheaper).

use std::path::{Path, PathBuf};

use semantic_domain::TokenId;

use crate::LoadedModel;

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read the corpus directory {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the corpus directory {} has no .txt files", .0.display())]
    Empty(PathBuf),
    #[error("the corpus holds only {have} tokens; {want} were asked for")]
    TooShort { have: usize, want: usize },
}

/// The articles of the corpus, in file-name order.
pub struct Corpus {
    texts: Vec<String>,
}

impl Corpus {
    /// The default location, relative to the project root: `../shared/corpus`.
    pub fn default_dir() -> PathBuf {
        PathBuf::from("../shared/corpus")
    }

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
        Ok(Self { texts })
    }

    /// Text of the articles starting at article `variant`, wrapping around.
    pub fn text(&self, variant: usize) -> String {
        let n = self.texts.len();
        (0..n)
            .map(|i| self.texts[(variant + i) % n].as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// Exactly `n` tokens of text, starting at article `variant`.
    pub fn tokens(
        &self,
        model: &LoadedModel,
        n: usize,
        variant: usize,
    ) -> Result<Vec<TokenId>, CorpusError> {
        let mut tokens = model.tokenize(&self.text(variant));
        if tokens.len() < n {
            return Err(CorpusError::TooShort {
                have: tokens.len(),
                want: n,
            });
        }
        tokens.truncate(n);
        Ok(tokens)
    }
}

//! `--model-alias NAME=MODEL`: the model names clients send, mapped onto
//! the served model without configuring the client.
//!
//! Clients bring their own names (Claude Code asks for `claude-sonnet-…`,
//! and `claude-haiku-…` for its small fast model; OpenAI tools for `gpt-…`).
//! An alias names one of them, or `*` for every name that is neither the
//! served model nor another alias; its target is `default` or a model id,
//! checked against the model loaded when a request arrives (a hot swap may
//! change it). Every API family resolves `model` through the same table.

use std::fmt;
use std::str::FromStr;

/// The alias that matches every name no other alias or model does.
pub const CATCH_ALL: &str = "*";

/// One `NAME=MODEL` mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelAlias {
    pub name: String,
    pub target: String,
}

/// Why an alias setting cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAlias {
    #[error("model alias {0:?} must look like NAME=MODEL (e.g. claude-sonnet-4-5=default, or *=default)")]
    Shape(String),
    #[error("model alias {0:?} is given twice")]
    Duplicate(String),
}

impl FromStr for ModelAlias {
    type Err = InvalidAlias;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let shape = || InvalidAlias::Shape(raw.to_owned());
        let (name, target) = raw.split_once('=').ok_or_else(shape)?;
        let (name, target) = (name.trim(), target.trim());
        if name.is_empty() || target.is_empty() || target == CATCH_ALL {
            return Err(shape());
        }
        Ok(Self {
            name: name.to_owned(),
            target: target.to_owned(),
        })
    }
}

impl fmt::Display for ModelAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.target)
    }
}

/// Every alias of a server, in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelAliases {
    aliases: Vec<ModelAlias>,
}

impl ModelAliases {
    /// The table, refusing a name given twice (which one would win is a
    /// guess an operator should not have to make).
    pub fn new(aliases: Vec<ModelAlias>) -> Result<Self, InvalidAlias> {
        for (i, alias) in aliases.iter().enumerate() {
            if aliases[..i].iter().any(|a| a.name == alias.name) {
                return Err(InvalidAlias::Duplicate(alias.name.clone()));
            }
        }
        Ok(Self { aliases })
    }

    /// The target `requested` maps to: its own alias, else the catch-all.
    /// Call only for a name that is not itself a served model.
    pub fn target(&self, requested: &str) -> Option<&str> {
        let named = |name: &str| self.aliases.iter().find(|a| a.name == name);
        named(requested)
            .or_else(|| named(CATCH_ALL))
            .map(|a| a.target.as_str())
    }

    /// The named aliases (not the catch-all) whose target is `model`.
    pub fn names_for<'a>(&'a self, model: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.aliases
            .iter()
            .filter(move |a| a.name != CATCH_ALL && a.target == model)
            .map(|a| a.name.as_str())
    }

    pub fn has_catch_all(&self) -> bool {
        self.aliases.iter().any(|a| a.name == CATCH_ALL)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ModelAlias> {
        self.aliases.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases(raw: &[&str]) -> ModelAliases {
        ModelAliases::new(raw.iter().map(|r| r.parse().unwrap()).collect()).unwrap()
    }

    #[test]
    fn a_named_alias_wins_over_the_catch_all() {
        let table = aliases(&["claude-haiku-4-5=small", "*=default"]);
        assert_eq!(table.target("claude-haiku-4-5"), Some("small"));
        assert_eq!(table.target("claude-sonnet-4-5"), Some("default"));
        assert_eq!(aliases(&["a=default"]).target("b"), None);
        let names: Vec<_> = table.names_for("small").collect();
        assert_eq!(names, ["claude-haiku-4-5"]);
        assert!(table.has_catch_all());
    }

    #[test]
    fn malformed_and_duplicate_aliases_are_refused() {
        for bad in ["nameonly", "=default", "name=", "a=*"] {
            let e = bad.parse::<ModelAlias>().unwrap_err();
            assert!(e.to_string().contains("NAME=MODEL"), "{bad}: {e}");
        }
        let twice = vec!["a=x".parse().unwrap(), "a=y".parse().unwrap()];
        assert_eq!(
            ModelAliases::new(twice),
            Err(InvalidAlias::Duplicate("a".into()))
        );
        let alias: ModelAlias = " gpt-4o = default ".parse().unwrap();
        assert_eq!(alias.to_string(), "gpt-4o=default");
    }
}

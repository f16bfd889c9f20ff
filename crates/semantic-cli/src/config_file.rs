//! Settings from a TOML file under flags and environment variables.
//!
//! Precedence is flag > env (`SEMANTIC_*`) > file (`--config`) > default.
//! clap already orders flags over env over defaults; this layer reads the
//! file named by `--config` / `SEMANTIC_CONFIG` and, for every setting clap
//! left at its default, feeds the file's value back in as a flag before the
//! final parse. Keys are the long flag names (`kv-budget` or `kv_budget`).
//! A key no flag knows, or a value the flag rejects, fails start-up with a
//! message naming the file and the key.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::Cli;

/// Subcommands whose settings a config file may hold.
const CONFIGURABLE: [&str; 2] = ["serve", "config"];

/// Settings that are not settings (or that would recurse).
const NOT_IN_FILE: [&str; 3] = ["help", "version", "config"];

/// The parsed command line plus where each setting came from.
pub struct Parsed {
    pub cli: Cli,
    pub sources: Sources,
}

/// Which settings the file supplied, and the matches to ask clap about the rest.
pub struct Sources {
    pub file: Option<PathBuf>,
    pub from_file: BTreeSet<String>,
    pub matches: Option<ArgMatches>,
}

/// Parse `args` (the process's arguments, program name first).
pub fn parse(args: Vec<OsString>) -> anyhow::Result<Parsed> {
    let first = Cli::command().try_get_matches_from(&args)?;
    let Some((name, sub)) = first.subcommand() else {
        return finish(first, Sources::none());
    };
    if !CONFIGURABLE.contains(&name) {
        return finish(first, Sources::none());
    }
    let Ok(Some(path)) = sub.try_get_one::<PathBuf>("config").map(|p| p.cloned()) else {
        return finish(first, Sources::none());
    };
    let table = read_table(&path)?;
    let command = Cli::command();
    let subcommand = command
        .find_subcommand(name)
        .with_context(|| format!("no subcommand {name}"))?;
    let mut extra = Vec::new();
    let mut from_file = BTreeSet::new();
    for (key, value) in &table {
        let id = key.replace('-', "_");
        let arg = subcommand
            .get_arguments()
            .find(|a| a.get_id() == id.as_str() && !NOT_IN_FILE.contains(&id.as_str()))
            .with_context(|| unknown_key(&path, key, subcommand))?;
        if !matches!(
            sub.value_source(&id),
            None | Some(ValueSource::DefaultValue)
        ) {
            continue; // a flag or env var wins
        }
        let long = arg.get_long().with_context(|| {
            format!(
                "config file {}: {key} cannot be set in a file",
                path.display()
            )
        })?;
        for text in values(&path, key, value)? {
            let given = flag(long, arg, &text);
            check_value(name, arg, &text, &given)
                .with_context(|| format!("config file {}: setting `{key}`", path.display()))?;
            extra.push(given);
        }
        from_file.insert(id);
    }
    let mut argv = args;
    argv.extend(extra.into_iter().flatten());
    let matches = Cli::command().try_get_matches_from(argv)?;
    let sub_matches = matches.subcommand().map(|(_, m)| m.clone());
    finish(
        matches,
        Sources {
            file: Some(path),
            from_file,
            matches: sub_matches,
        },
    )
}

impl Sources {
    fn none() -> Self {
        Self {
            file: None,
            from_file: BTreeSet::new(),
            matches: None,
        }
    }

    /// Where setting `id` of the subcommand came from.
    pub fn of(&self, id: &str, matches: &ArgMatches) -> &'static str {
        if self.from_file.contains(id) {
            return "file";
        }
        match matches.value_source(id) {
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "env",
            Some(ValueSource::DefaultValue) => "default",
            _ => "unset",
        }
    }
}

fn finish(matches: ArgMatches, mut sources: Sources) -> anyhow::Result<Parsed> {
    if sources.matches.is_none() {
        sources.matches = matches.subcommand().map(|(_, m)| m.clone());
    }
    let cli = Cli::from_arg_matches(&matches)?;
    Ok(Parsed { cli, sources })
}

fn read_table(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --config file {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("config file {} is not valid TOML", path.display()))
}

fn unknown_key(path: &Path, key: &str, command: &clap::Command) -> String {
    let known: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !NOT_IN_FILE.contains(l))
        .map(str::to_owned)
        .collect();
    format!(
        "config file {}: unknown setting `{key}`; known settings: {}",
        path.display(),
        known.join(", ")
    )
}

/// A TOML value as the strings a flag would take (arrays: one per element).
fn values(path: &Path, key: &str, value: &toml::Value) -> anyhow::Result<Vec<String>> {
    Ok(match value {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Integer(i) => vec![i.to_string()],
        toml::Value::Float(f) => vec![f.to_string()],
        toml::Value::Boolean(b) => vec![b.to_string()],
        toml::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(values(path, key, item)?);
            }
            out
        }
        other => bail!(
            "config file {}: setting `{key}` must be a string, number, boolean or array, not a {}",
            path.display(),
            other.type_str()
        ),
    })
}

/// Parse the flag alone, so a bad value is reported against the file
/// rather than as if the user had typed it.
fn check_value(
    subcommand: &str,
    arg: &clap::Arg,
    text: &str,
    given: &[OsString],
) -> anyhow::Result<()> {
    if is_switch(arg) && text != "true" && text != "false" {
        bail!("expected true or false, got {text:?}");
    }
    let mut argv: Vec<OsString> = vec!["semantic".into(), subcommand.into()];
    argv.extend(given.iter().cloned());
    Cli::command()
        .try_get_matches_from(argv)
        .map(|_| ())
        .map_err(|e| {
            let message = e.render().to_string();
            let first = message.lines().next().unwrap_or_default();
            anyhow::anyhow!("{}", first.trim_start_matches("error: "))
        })
}

fn is_switch(arg: &clap::Arg) -> bool {
    matches!(
        arg.get_action(),
        clap::ArgAction::SetTrue | clap::ArgAction::SetFalse
    )
}

/// The flag(s) that give `arg` the value `text` (none for a false switch).
fn flag(long: &str, arg: &clap::Arg, text: &str) -> Vec<OsString> {
    if is_switch(arg) {
        return if text == "true" {
            vec![format!("--{long}").into()]
        } else {
            Vec::new()
        };
    }
    vec![format!("--{long}={text}").into()]
}

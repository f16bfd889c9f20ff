//! `semantic config`: the settings `semantic serve` would run with, one per
//! line in TOML form (so the output can seed a `--config` file), each with
//! where it came from. Secrets are redacted.

use clap::{ArgMatches, CommandFactory};

use crate::cli::{Cli, ServeArgs};
use crate::config_file::Sources;

/// Settings whose values are never printed.
fn is_secret(id: &str) -> bool {
    id.contains("key") || id.contains("secret") || id.contains("token_file")
}

pub fn run(args: ServeArgs, sources: &Sources) -> anyhow::Result<()> {
    // Fail like `serve` would on an invalid setting, naming it.
    let mut engine = args.engine.to_config()?;
    args.max_tokens.policy()?;
    args.reply_defaults.apply(&mut engine)?;
    let Some(matches) = sources.matches.as_ref() else {
        anyhow::bail!("no settings were parsed");
    };
    let command = Cli::command();
    let Some(config) = command.find_subcommand("config") else {
        anyhow::bail!("the config subcommand is missing from the CLI definition");
    };
    match &sources.file {
        Some(file) => println!("# config file: {}", file.display()),
        None => println!("# config file: none (--config / SEMANTIC_CONFIG)"),
    }
    println!("# precedence: flag > env > file > default");
    for arg in config.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if ["help", "version", "config"].contains(&id) {
            continue;
        }
        let source = sources.of(id, matches);
        match render(matches, id) {
            Some(_) if is_secret(id) => println!("{long} = \"<redacted>\"  # {source}"),
            Some(value) => println!("{long} = {value}  # {source}"),
            None => println!("# {long} is not set"),
        }
    }
    Ok(())
}

/// The value as given (TOML: numbers and booleans bare, the rest quoted).
fn render(matches: &ArgMatches, id: &str) -> Option<String> {
    let raw: Vec<String> = matches
        .get_raw(id)?
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let quoted: Vec<String> = raw.iter().map(|v| toml_scalar(v)).collect();
    match quoted.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(format!("[{}]", many.join(", "))),
    }
}

fn toml_scalar(text: &str) -> String {
    let bare = text.parse::<i64>().is_ok()
        || text.parse::<f64>().is_ok_and(f64::is_finite)
        || text == "true"
        || text == "false";
    if bare {
        text.to_owned()
    } else {
        toml::Value::String(text.to_owned()).to_string()
    }
}

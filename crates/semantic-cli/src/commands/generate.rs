//! `semantic generate`: one chat turn, streamed to stdout.

use std::io::Write;

use anyhow::{bail, Context};
use semantic_domain::chat::ChatMessage;
use semantic_domain::{GenerateRequest, GenerationEvent, SamplingParams};

use crate::cli::GenerateArgs;

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if args.prompt.trim().is_empty() {
        bail!("--prompt is empty; give the question to answer");
    }
    let engine = super::start_engine(args.engine.to_config()?)?;
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(ChatMessage::system(system.as_str()));
    }
    messages.push(ChatMessage::user(args.prompt.as_str()));
    let prompt = engine.model().tokenize_chat(&messages, None)?;
    let sampling = SamplingParams {
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        seed: args.seed,
        max_tokens: Some(args.max_tokens),
        stop: args.stop.clone(),
        ignore_eos: false,
        grammar: None,
    };
    let mut stream = engine.submit(GenerateRequest::new(prompt, sampling, None))?;
    let result = print_stream(&mut stream);
    drop(stream);
    engine.shutdown();
    result
}

fn print_stream(stream: &mut semantic_engine::GenerationStream) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    while let Some(event) = stream.blocking_next() {
        match event {
            GenerationEvent::Token { text, .. } | GenerationEvent::Text { text } => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            GenerationEvent::Finished {
                reason,
                usage,
                timings,
            } => {
                writeln!(out)?;
                tracing::info!(
                    ?reason,
                    prompt_tokens = usage.prompt_tokens,
                    completion_tokens = usage.completion_tokens,
                    first_token_seconds = timings.first_token,
                    total_seconds = timings.total,
                    "done"
                );
                return Ok(());
            }
            GenerationEvent::Failed { message } => bail!("generation failed: {message}"),
        }
    }
    Err(anyhow::anyhow!("the engine stopped")).context("generation did not finish")
}

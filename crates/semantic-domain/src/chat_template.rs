//! Rendering a model's own chat template.
//!
//! GGUF files carry the HuggingFace Jinja chat template the model was trained
//! with (`tokenizer.chat_template`). Hard-coding a prompt format per model
//! family drifts silently, so we render that template with minijinja, set up
//! to behave like `transformers.apply_chat_template`:
//!
//! * `trim_blocks` + `lstrip_blocks`, no trailing newline kept (HF's settings);
//! * python string/dict methods (`.strip()`, `.startswith()`, `.items()`, ...)
//!   via `minijinja_contrib::pycompat`;
//! * a `tojson` filter that matches Python's `json.dumps(ensure_ascii=False)`
//!   (`", "` / `": "` separators, no HTML escaping, key order kept) rather than
//!   minijinja's HTML-safe variant, because the exact bytes end up in the prompt;
//! * `raise_exception(msg)` and `strftime_now(fmt)` globals.
//!
//! The context holds `messages` (OpenAI shape), `add_generation_prompt`,
//! `bos_token`, `eos_token` and, only when given, `tools`.

use std::io;

use minijinja::value::{Kwargs, Value};
use minijinja::State;
use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;

use crate::chat::ChatMessage;

/// The name the single template is registered under.
const TEMPLATE_NAME: &str = "chat";

/// Most template instructions one render may run. Templates come from GGUF
/// files, which anyone can write: a loop that never ends must fail, not hang
/// the request. Real chat templates run tens of instructions per message
/// (SmolLM2's ~30), so even the most messages a request may carry stay far
/// below; a runaway loop uses this up in well under a second.
pub const RENDER_FUEL: u64 = 20_000_000;

/// Most nested template calls (macros, includes): HF templates nest a few.
pub const RENDER_RECURSION_LIMIT: usize = 64;

/// Largest rendered prompt: well above what the largest request body can
/// expand to, far below what would exhaust memory.
pub const MAX_RENDERED_BYTES: usize = 64 << 20;

/// Most bytes of strings and sequences one render may build, intermediate
/// values included (our patched minijinja's memory budget,
/// `patches/minijinja/`). Fuel bounds instructions, not what they build: one
/// `{% set s = s ~ s %}` doubles a string. Real templates build a few times
/// the prompt (each message's text, the output); the budget leaves room for
/// the largest prompt four times over, and nothing is credited back when a
/// value is dropped, so it also bounds the copying a render does.
pub const RENDER_MEMORY_LIMIT: usize = 4 * MAX_RENDERED_BYTES;

/// Largest single value a Python string method may return (`str.replace`,
/// `str.join`, `str.split`): none can be part of a prompt if it is larger
/// than the prompt may be. Checked before the method runs, because the
/// memory budget charges a method's result only after it is built.
const MAX_METHOD_RESULT_BYTES: usize = MAX_RENDERED_BYTES;

/// What `strftime_now` returns unless [`ChatTemplate::with_date_string`] is used.
///
/// Same fixed date llama.cpp's template tests use.
pub const DEFAULT_DATE_STRING: &str = "26 Jul 2024";

/// ChatML, the format `transformers` used as its default chat template.
/// Used when a GGUF carries no template of its own.
pub const CHATML_SOURCE: &str = "{% for message in messages %}\
{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Why a template could not be compiled or rendered.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid chat template: {0}")]
    Invalid(String),
    #[error("chat template failed to render: {0}")]
    Render(String),
    #[error("the chat template ran more than {RENDER_FUEL} instructions; it loops without end or is far too costly")]
    OutOfFuel,
    #[error("the chat template produced more than {MAX_RENDERED_BYTES} bytes")]
    TooLong,
    #[error("the chat template built more than {RENDER_MEMORY_LIMIT} bytes of data while rendering; it grows values without bound or is far too costly")]
    OutOfMemory,
}

/// A compiled chat template plus the special tokens it is rendered with.
///
/// Compiled once at construction; rendering is `&self` and the type is
/// `Send + Sync`, so one instance can be shared across requests.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
    supports_tools: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_len", &self.source.len())
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("supports_tools", &self.supports_tools)
            .finish()
    }
}

/// The variables a template sees; mirrors what HF passes.
#[derive(Serialize)]
struct RenderContext<'a> {
    messages: Vec<serde_json::Value>,
    add_generation_prompt: bool,
    bos_token: &'a str,
    eos_token: &'a str,
    /// Omitted (undefined, not `none`) when absent, as in HF.
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a [serde_json::Value]>,
}

impl ChatTemplate {
    /// Compile `source` (a HuggingFace Jinja chat template).
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        configure(&mut env);
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|e| TemplateError::Invalid(describe(&e)))?;
        let supports_tools = env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| TemplateError::Invalid(describe(&e)))?
            .undeclared_variables(false)
            .contains("tools");
        Ok(Self {
            env,
            source: source.to_owned(),
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
            supports_tools,
        })
    }

    /// The ChatML fallback ([`CHATML_SOURCE`]) for GGUFs without a template.
    pub fn chatml(bos_token: &str, eos_token: &str) -> Self {
        // CHATML_SOURCE is a constant; `chatml_fallback` proves it compiles.
        Self::new(CHATML_SOURCE, bos_token, eos_token).expect("built-in ChatML template compiles")
    }

    /// Make `strftime_now(fmt)` return `date` (its format argument is ignored).
    ///
    /// This crate must not read the clock, so the caller supplies today's date
    /// already formatted; most templates (Llama 3.x) ask for `"%d %b %Y"`,
    /// e.g. `"26 Jul 2024"`, which is the default.
    pub fn with_date_string(mut self, date: impl Into<String>) -> Self {
        self.env
            .add_function("strftime_now", fixed_date(date.into()));
        self
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the template reads the `tools` variable, i.e. tool specs
    /// passed to [`render`](Self::render) can reach the prompt. Determined
    /// from the parsed template, so mentions in text or comments don't count.
    pub fn supports_tools(&self) -> bool {
        self.supports_tools
    }

    /// Render the prompt for `messages`; `tools` are OpenAI-style tool specs
    /// passed through unchanged.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[serde_json::Value]>,
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let ctx = RenderContext {
            messages: messages.iter().map(message_value).collect(),
            add_generation_prompt,
            bos_token: &self.bos_token,
            eos_token: &self.eos_token,
            tools,
        };
        let mut out = BoundedText::default();
        let rendered = self
            .env
            .get_template(TEMPLATE_NAME)
            .and_then(|t| t.render_captured_to(ctx, &mut out).map(drop));
        match rendered {
            Ok(_) => String::from_utf8(out.bytes)
                .map_err(|_| TemplateError::Render("the output is not UTF-8".into())),
            Err(_) if out.overflowed => Err(TemplateError::TooLong),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(TemplateError::OutOfFuel),
            Err(e) if e.kind() == ErrorKind::OutOfMemory => Err(TemplateError::OutOfMemory),
            Err(e) => Err(TemplateError::Render(describe(&e))),
        }
    }
}

/// The render target: refuses to grow past [`MAX_RENDERED_BYTES`].
#[derive(Default)]
struct BoundedText {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl io::Write for BoundedText {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_RENDERED_BYTES {
            self.overflowed = true;
            return Err(io::Error::other("rendered prompt too long"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts the bytes written to it, keeping none; refuses past
/// [`MAX_RENDERED_BYTES`].
#[derive(Default)]
struct SizeProbe {
    bytes: usize,
}

impl io::Write for SizeProbe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len();
        if self.bytes > MAX_RENDERED_BYTES {
            return Err(io::Error::other(format!(
                "the JSON text is longer than the {MAX_RENDERED_BYTES} bytes a prompt may hold"
            )));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Apply HF-compatible syntax settings, filters and globals.
fn configure(env: &mut Environment<'static>) {
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(false);
    env.set_fuel(Some(RENDER_FUEL));
    env.set_memory_limit(Some(RENDER_MEMORY_LIMIT));
    env.set_recursion_limit(RENDER_RECURSION_LIMIT);
    minijinja_contrib::add_to_environment(env);
    env.set_unknown_method_callback(bounded_python_methods);
    env.add_filter("tojson", python_tojson);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", fixed_date(DEFAULT_DATE_STRING.to_owned()));
}

/// A message as HF templates expect it: OpenAI shape, optional keys absent.
fn message_value(m: &ChatMessage) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert("role".into(), m.role.as_str().into());
    map.insert("content".into(), m.content.clone().into());
    if !m.tool_calls.is_empty() {
        let calls = m.tool_calls.iter().map(|c| {
            serde_json::json!({
                "id": c.id,
                "type": "function",
                "function": { "name": c.name, "arguments": c.arguments },
            })
        });
        map.insert("tool_calls".into(), calls.collect());
    }
    if let Some(id) = &m.tool_call_id {
        map.insert("tool_call_id".into(), id.clone().into());
    }
    if let Some(name) = &m.name {
        map.insert("name".into(), name.clone().into());
    }
    serde_json::Value::Object(map)
}

/// A minijinja error with its source chain, on one line.
fn describe(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Python's string and dict methods (`minijinja_contrib::pycompat`), with the
/// ones whose result can dwarf their input refused beforehand when it would
/// exceed [`MAX_METHOD_RESULT_BYTES`]: an empty `old` makes `str.replace`
/// quadratic, `str.join` repeats its separator and items, `str.split` makes
/// one value per separator.
fn bounded_python_methods(
    state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if let Some(text) = value.as_str() {
        let size = python_method_result_size(text, method, args);
        if size > MAX_METHOD_RESULT_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("str.{method} would build {size} bytes, more than the {MAX_METHOD_RESULT_BYTES} a prompt may hold"),
            ));
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// An upper bound of the bytes `text.method(args)` builds (0 for methods
/// whose result is no larger than `text`, or that fail on these arguments).
fn python_method_result_size(text: &str, method: &str, args: &[Value]) -> usize {
    /// What one element of a list costs, as minijinja's budget counts it.
    const ELEMENT_BYTES: usize = 32;
    let str_arg = |i: usize| args.get(i).and_then(Value::as_str);
    match method {
        "replace" => {
            let (Some(old), Some(new)) = (str_arg(0), str_arg(1)) else {
                return 0;
            };
            let matches = if old.is_empty() {
                text.chars().count() + 1
            } else {
                text.matches(old).count()
            };
            matches.saturating_mul(new.len()).saturating_add(text.len())
        }
        "join" => {
            let Some(Ok(items)) = args.first().map(Value::try_iter) else {
                return 0;
            };
            items.fold(0usize, |size, item| {
                let item_len = item
                    .as_str()
                    .map_or_else(|| item.to_string().len(), str::len);
                size.saturating_add(item_len).saturating_add(text.len())
            })
        }
        "split" => {
            let pieces = match str_arg(0) {
                Some(sep) if !sep.is_empty() => text.matches(sep).count() + 1,
                _ => text.split_whitespace().count(),
            };
            pieces.saturating_mul(ELEMENT_BYTES)
        }
        "splitlines" => (text.lines().count() + 1).saturating_mul(ELEMENT_BYTES),
        _ => 0,
    }
}

/// `raise_exception(msg)`: templates use it to reject unsupported input.
fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

fn fixed_date(date: String) -> impl Fn(Option<String>) -> String + Send + Sync + 'static {
    move |_format| date.clone()
}

/// `tojson` as HF defines it: `json.dumps(x, ensure_ascii=False, indent=indent,
/// sort_keys=sort_keys)`. Supports the `indent`, `ensure_ascii` and
/// `sort_keys` keyword arguments; others are rejected.
fn python_tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    // `to_value` copies every string it reaches, and `[s] * 1000` reaches `s`
    // a thousand times: measure the JSON text first, within the prompt limit.
    serde_json::to_writer(SizeProbe::default(), value).map_err(json_error)?;
    let mut json = serde_json::to_value(value).map_err(json_error)?;
    if sort_keys == Some(true) {
        json.sort_all_objects();
    }
    let mut text = python_json_dumps(&json, indent).map_err(json_error)?;
    if ensure_ascii == Some(true) {
        text = escape_non_ascii(&text);
    }
    Ok(Value::from_safe_string(text))
}

/// `value` as Python's `json.dumps(value, ensure_ascii=False)` writes it: the
/// text HF templates put in prompts, reused by the tool-prompt fallback so
/// both spell JSON the same way.
pub(crate) fn python_json(value: &serde_json::Value) -> String {
    // Serializing a `Value` into memory cannot fail, and the output is UTF-8.
    python_json_dumps(value, None).unwrap_or_else(|_| value.to_string())
}

fn json_error(err: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::InvalidOperation, "cannot serialize to JSON").with_source(err)
}

/// Serialize like Python's `json.dumps`: `", "` and `": "` separators when
/// compact, `","` + newline + indent when indented.
fn python_json_dumps(json: &serde_json::Value, indent: Option<usize>) -> io::Result<String> {
    let mut out = Vec::new();
    match indent {
        None => json.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            PythonCompact,
        ))?,
        Some(n) => {
            let pad = " ".repeat(n);
            let fmt = serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes());
            json.serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))?
        }
    }
    String::from_utf8(out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Python's `ensure_ascii=True`: non-ASCII as `\uXXXX` UTF-16 escapes. Only
/// string contents can be non-ASCII, so escaping the whole text is safe.
fn escape_non_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0u16; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// serde_json formatter with Python's default compact separators.
struct PythonCompact;

impl serde_json::ser::Formatter for PythonCompact {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ToolCall;
    use serde_json::json;

    /// Verbatim from the SmolLM2 GGUF.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}";

    /// Qwen2.5/Hermes-style tool template (abridged), exercising `tools`,
    /// `tojson`, `.strip()`, `is defined`, `set` in loops and `{% break %}`.
    /// Expected outputs below were cross-checked against Python jinja2 3.1
    /// set up like transformers (trim/lstrip blocks, loopcontrols, HF tojson).
    const QWEN_STYLE: &str = r#"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'].strip() }}
    {%- else %}
        {{- 'You are Qwen.' }}
    {%- endif %}
    {{- "\n\n# Tools\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools><|im_end|>\n" }}
{%- elif messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\n' + messages[0]['content'].strip() + '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if message.role == "user" or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>assistant' }}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' + tool_call.name + '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
            {%- break %}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {{- '<|im_start|>user\n<tool_response>\n' + message.content + '\n</tool_response><|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

    fn weather_tool() -> serde_json::Value {
        json!({
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for <city> & région",
                "parameters": {"type": "object", "required": ["city"]},
            }
        })
    }

    fn call(id: &str, name: &str, arguments: serde_json::Value) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
        }
    }

    fn render_str(source: &str, messages: &[ChatMessage]) -> String {
        ChatTemplate::new(source, "<s>", "</s>")
            .unwrap()
            .render(messages, None, false)
            .unwrap()
    }

    /// A hostile GGUF's template fails fast with a typed error: it never
    /// hangs the request, exhausts memory or overflows the stack.
    #[test]
    fn runaway_templates_are_stopped() {
        let messages = [ChatMessage::user("hi")];
        let render = |source: &str| {
            let started = std::time::Instant::now();
            let result = ChatTemplate::new(source, "<s>", "</s>")
                .unwrap()
                .render(&messages, None, false);
            (result, started.elapsed())
        };
        let (endless, took) = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        );
        assert_eq!(endless, Err(TemplateError::OutOfFuel));
        assert!(took < std::time::Duration::from_secs(20), "{took:?}");
        let (huge, _) = render("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}");
        assert_eq!(huge, Err(TemplateError::TooLong));
        let (deep, _) = render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
        assert!(matches!(deep, Err(TemplateError::Render(_))), "{deep:?}");
        // Real templates are far inside the limits: 2,000 messages render.
        let many: Vec<ChatMessage> = (0..2_000)
            .map(|i| ChatMessage::user(format!("m{i}")))
            .collect();
        assert!(ChatTemplate::chatml("<s>", "</s>")
            .render(&many, None, true)
            .is_ok());
    }

    /// Templates that build ever larger values without printing them (what
    /// fuel and the output limit cannot see) fail with a typed error, fast:
    /// every way to grow a string or a list, in operators, captured output,
    /// the text of containers, filters, methods and constant folding.
    #[test]
    fn templates_that_grow_values_are_stopped() {
        let messages = [ChatMessage::user("hi")];
        let big = "{% set s = 'x' * 10000000 %}";
        let cases = [
            // doubling by `~`, `+` and captured output, in a loop
            "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}".to_owned(),
            "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}".to_owned(),
            "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set c %}{{ ns.s }}{{ ns.s }}{% endset %}{% set ns.s = c %}{% endfor %}".to_owned(),
            // doubling in straight-line code, from the largest repetition minijinja allows
            "{% set s = 'x' * 100000000 %}{% set s = s ~ s %}{% set s = s ~ s %}{% set s = s ~ s %}".to_owned(),
            // a list doubled, and many distinct large strings kept in a list
            "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}".to_owned(),
            "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = ns.l + [('x' * 10000000) ~ i] %}{% endfor %}".to_owned(),
            // a small list of references to one large string, made into text
            format!("{big}{{{{ ([s] * 1000)|join|length }}}}"),
            format!("{big}{{{{ (([s] * 1000) ~ '')|length }}}}"),
            format!("{big}{{{{ ([s] * 1000)|string|length }}}}"),
            format!("{big}{{{{ ([s] * 1000)|pprint|length }}}}"),
            format!("{big}{{{{ (([s] * 1000) in 'abc') }}}}"),
            // filters that amplify their input
            "{{ ('x' * 100000)|replace('', 'y' * 100000)|length }}".to_owned(),
            "{{ ('x\n' * 1000000)|indent(1000)|length }}".to_owned(),
            "{{ '%999999999s'|format('x')|length }}".to_owned(),
            "{{ [1]|batch(1000000000000)|length }}".to_owned(),
            "{{ ('x' * 100000000)|list|length }}".to_owned(),
            // constant folding at compile time builds nothing large
            "{{ ((('x' * 100000000) ~ ('x' * 100000000)) ~ (('x' * 100000000) ~ ('x' * 100000000)))|length }}".to_owned(),
        ];
        for source in &cases {
            let started = std::time::Instant::now();
            let template = ChatTemplate::new(source, "<s>", "</s>").unwrap();
            let result = template.render(&messages, None, false);
            let took = started.elapsed();
            assert_eq!(result, Err(TemplateError::OutOfMemory), "{source}");
            assert!(
                took < std::time::Duration::from_secs(10),
                "{source}: {took:?}"
            );
        }
        // Python's methods and `tojson` are refused before they build.
        let refused = [
            "{{ ('x' * 100000).replace('', 'y' * 100000)|length }}".to_owned(),
            format!("{big}{{{{ ', '.join([s] * 1000)|length }}}}"),
            format!("{big}{{{{ ([s] * 1000)|tojson|length }}}}"),
            "{{ (' ' * 90000000).split(' ')|length }}".to_owned(),
        ];
        for source in &refused {
            let result = ChatTemplate::new(source, "<s>", "</s>")
                .unwrap()
                .render(&messages, None, false);
            assert!(
                matches!(&result, Err(TemplateError::Render(msg)) if msg.contains("bytes")),
                "{source}: {result:?}"
            );
        }
        // The budget is per render: the same template renders again, and
        // building a few large values within it is fine.
        let fits = ChatTemplate::new(
            "{% set s = 'x' * 10000000 %}{{ (s ~ s)|length }} {{ ([s] * 3)|join|length }}",
            "<s>",
            "</s>",
        )
        .unwrap();
        for _ in 0..3 {
            assert_eq!(
                fits.render(&messages, None, false).unwrap(),
                "20000000 30000000"
            );
        }
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ChatTemplate>();
    }

    #[test]
    fn smollm2_system_and_user() {
        let t = ChatTemplate::new(SMOLLM2, "", "<|im_end|>").unwrap();
        let msgs = [
            ChatMessage::system("You are terse."),
            ChatMessage::user("Hi"),
        ];
        assert_eq!(
            t.render(&msgs, None, true).unwrap(),
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(!t.supports_tools());
        assert_eq!(t.source(), SMOLLM2);
    }

    #[test]
    fn smollm2_injects_default_system() {
        let t = ChatTemplate::new(SMOLLM2, "", "<|im_end|>").unwrap();
        assert_eq!(
            t.render(&[ChatMessage::user("Hi")], None, false).unwrap(),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nHi<|im_end|>\n"
        );
    }

    #[test]
    fn invalid_template_is_rejected() {
        let err = ChatTemplate::new("{% for m in messages %}", "", "").unwrap_err();
        assert!(matches!(err, TemplateError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn raise_exception_surfaces_as_render_error() {
        let src = "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}ok";
        let t = ChatTemplate::new(src, "", "").unwrap();
        let err = t
            .render(&[ChatMessage::system("x")], None, false)
            .unwrap_err();
        match err {
            TemplateError::Render(msg) => {
                assert!(msg.contains("Conversation must start with user"), "{msg}")
            }
            other => panic!("expected Render, got {other:?}"),
        }
        assert_eq!(
            t.render(&[ChatMessage::user("x")], None, false).unwrap(),
            "ok"
        );
    }

    #[test]
    fn qwen_style_tools_render() {
        let t = ChatTemplate::new(QWEN_STYLE, "", "<|im_end|>").unwrap();
        assert!(t.supports_tools());
        let mut asked = ChatMessage::assistant("");
        asked.tool_calls = vec![
            call("c1", "get_weather", json!({"city": "Paris", "unit": "C"})),
            call("c2", "ignored_after_break", json!({})),
        ];
        let msgs = [
            ChatMessage::system("  Be brief.\n"),
            ChatMessage::user("Weather?"),
            asked,
            ChatMessage::tool("c1", "sunny"),
        ];
        let out = t.render(&msgs, Some(&[weather_tool()]), true).unwrap();
        let expected = concat!(
            "<|im_start|>system\nBe brief.\n\n# Tools\n<tools>\n",
            r#"{"type": "function", "function": {"name": "get_weather", "description": "Weather for <city> & région", "parameters": {"type": "object", "required": ["city"]}}}"#,
            "\n</tools><|im_end|>\n",
            "<|im_start|>user\nWeather?<|im_end|>\n",
            "<|im_start|>assistant\n<tool_call>\n",
            r#"{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}"#,
            "\n</tool_call><|im_end|>\n",
            "<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n",
            "<|im_start|>assistant\n",
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn tools_undefined_when_not_given() {
        let t = ChatTemplate::new(QWEN_STYLE, "", "").unwrap();
        let out = t
            .render(
                &[ChatMessage::system("S"), ChatMessage::user("U")],
                None,
                false,
            )
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
        );
        let probe = ChatTemplate::new("{{ tools is defined }}", "", "").unwrap();
        assert_eq!(probe.render(&[], None, false).unwrap(), "False");
        assert_eq!(probe.render(&[], Some(&[]), false).unwrap(), "True");
    }

    #[test]
    fn supports_tools_ignores_text_mentions() {
        let t =
            ChatTemplate::new("{# tools #}{{ 'no tools here' }}{% set x = 1 %}", "", "").unwrap();
        assert!(!t.supports_tools());
        let t = ChatTemplate::new(
            "{% if tools is defined %}{{ tools|length }}{% endif %}",
            "",
            "",
        )
        .unwrap();
        assert!(t.supports_tools());
    }

    #[test]
    fn tool_calls_reach_template_in_openai_shape() {
        let src = "{% for m in messages %}{% for c in m.tool_calls %}{{ c.id }}|{{ c.type }}|{{ c.function.name }}|{{ c.function.arguments.city }}|{{ c.function.arguments|tojson }}{% endfor %}\
                   {% if m.tool_call_id is defined %}{{ m.role }}:{{ m.tool_call_id }}:{{ m.name }}{% endif %}{% endfor %}";
        let mut asked = ChatMessage::assistant("");
        asked.tool_calls.push(call(
            "call_9",
            "get_weather",
            json!({"city": "Oslo", "days": 2}),
        ));
        let mut answer = ChatMessage::tool("call_9", "cold");
        answer.name = Some("get_weather".into());
        let out = render_str(src, &[ChatMessage::user("u"), asked, answer]);
        assert_eq!(
            out,
            r#"call_9|function|get_weather|Oslo|{"city": "Oslo", "days": 2}tool:call_9:get_weather"#
        );
    }

    #[test]
    fn plain_messages_have_no_optional_keys() {
        let src = "{% for m in messages %}{{ m.tool_calls is defined }} {{ m.tool_call_id is defined }} {{ m.name is defined }}{% endfor %}";
        assert_eq!(
            render_str(src, &[ChatMessage::user("u")]),
            "False False False"
        );
    }

    #[test]
    fn pycompat_methods_and_tokens() {
        let src = "{{ bos_token }}{% for m in messages %}{{ m.content.strip().split(',')|join('+') }}\
                   {{ m.content.startswith(' a') }}{% for k, v in {'x': 1}.items() %}{{ k }}={{ v }}{% endfor %}{% endfor %}{{ eos_token }}";
        assert_eq!(
            render_str(src, &[ChatMessage::user(" a,b ")]),
            "<s>a+bTruex=1</s>"
        );
    }

    #[test]
    fn tojson_matches_python() {
        let src = "{{ {'b': 1, 'a': [1, 'x'], 'h': '<&>', 'u': 'é'} | tojson }}\n\
                   {{ {'b': 1, 'a': [1, 2]} | tojson(indent=2) }}\n\
                   {{ {'b': 1, 'a': 'é'} | tojson(sort_keys=true, ensure_ascii=true) }}";
        let out = render_str(src, &[]);
        let expected = "{\"b\": 1, \"a\": [1, \"x\"], \"h\": \"<&>\", \"u\": \"é\"}\n\
                        {\n  \"b\": 1,\n  \"a\": [\n    1,\n    2\n  ]\n}\n\
                        {\"a\": \"\\u00e9\", \"b\": 1}";
        assert_eq!(out, expected);
        let err = ChatTemplate::new("{{ 1 | tojson(bogus=1) }}", "", "")
            .unwrap()
            .render(&[], None, false);
        assert!(matches!(err, Err(TemplateError::Render(_))));
    }

    #[test]
    fn strftime_now_uses_supplied_date() {
        let src = "{{ strftime_now('%d %b %Y') }}";
        assert_eq!(render_str(src, &[]), DEFAULT_DATE_STRING);
        let t = ChatTemplate::new(src, "", "")
            .unwrap()
            .with_date_string("01 Jan 2030");
        assert_eq!(t.render(&[], None, false).unwrap(), "01 Jan 2030");
    }

    #[test]
    fn namespace_and_loop_controls() {
        let src = "{% set ns = namespace(n=0) %}{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}\
                   {% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}";
        let msgs = vec![ChatMessage::user("u"); 5];
        assert_eq!(render_str(src, &msgs), "2");
    }

    #[test]
    fn chatml_fallback() {
        let t = ChatTemplate::chatml("", "<|im_end|>");
        assert!(!t.supports_tools());
        let msgs = [
            ChatMessage::system("S"),
            ChatMessage::user("Hi"),
            ChatMessage::assistant("Hello"),
            ChatMessage::user("Bye"),
        ];
        assert_eq!(
            t.render(&msgs, None, true).unwrap(),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            t.render(&msgs[..1], None, false).unwrap(),
            "<|im_start|>system\nS<|im_end|>\n"
        );
    }
}

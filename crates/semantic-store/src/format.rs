//! The on-disk format of one agent's KV file.
//!
//! A plain safetensors file, so standard tooling (`safetensors.safe_open` in
//! Python, `SafeTensors::deserialize` in Rust) can open it:
//!
//! ```text
//! [u64 LE: N] [N bytes: JSON header, space-padded to 8] [kv_state blob]
//! ```
//!
//! The header holds one tensor, `kv_state` (dtype U8, shape `[kv_bytes]`),
//! and string metadata: `format`, `format_version`, `agent_id`, `tenant`
//! (absent in files written before tenants: the open tenant `default`),
//! `model_fingerprint`, `engine_build`, `kv_type`, `token_count`, `tokens`
//! (JSON array of i32), `kv_bytes`, `kv_checksum` + `kv_checksum_algo`
//! (CRC-32/ISO-HDLC of the blob, 8 hex digits), `created_unix_ms`, and
//! `meta_checksum`: a CRC-32 over every other metadata pair, so a flipped
//! byte in the token list cannot pair a blob with the wrong tokens.
//!
//! Decoding never trusts a length before checking it against the file.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;
use semantic_domain::{AgentId, AgentKey, KvType, TenantId, TokenId};

use crate::error::StoreError;
use crate::record::AgentRecordMeta;

/// Value of the `format` key.
pub const FORMAT_NAME: &str = "semantic-agent-kv";
/// Value of the `format_version` key this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the single tensor.
pub const TENSOR_NAME: &str = "kv_state";
/// Value of `kv_checksum_algo`: CRC-32 (IEEE/zlib polynomial), as `crc32fast` computes.
pub const CHECKSUM_ALGO: &str = "crc32";
/// Largest header accepted (the safetensors crate's own limit). A token list
/// for a 128K context is about 1 MB, so this only stops absurd lengths.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

const META_CHECKSUM_KEY: &str = "meta_checksum";

/// A parsed, self-consistent header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub meta: AgentRecordMeta,
    pub format_version: u32,
    /// CRC-32 of the blob, as recorded when it was written.
    pub kv_checksum: u32,
    /// Where the blob starts: 8 + the JSON header's length.
    pub data_offset: u64,
}

impl FileHeader {
    /// The exact size an intact file has.
    pub fn expected_file_len(&self) -> u64 {
        self.data_offset + self.meta.kv_bytes
    }
}

/// CRC-32 of a blob.
pub fn checksum(blob: &[u8]) -> u32 {
    crc32fast::hash(blob)
}

/// Why a header cannot be used, before the file's path is attached.
#[derive(Debug)]
pub(crate) enum HeaderProblem {
    Corrupt(String),
    Unsupported(String),
}

impl HeaderProblem {
    pub(crate) fn at(self, path: &Path) -> StoreError {
        match self {
            Self::Corrupt(reason) => StoreError::corrupt(path, reason),
            Self::Unsupported(reason) => StoreError::Unsupported {
                path: path.to_owned(),
                reason,
            },
        }
    }
}

fn corrupt<T>(reason: impl Into<String>) -> Result<T, HeaderProblem> {
    Err(HeaderProblem::Corrupt(reason.into()))
}

/// The 8-byte length prefix plus the JSON header for `meta`; the blob follows.
pub fn encode_header(meta: &AgentRecordMeta, kv_checksum: u32) -> Result<Vec<u8>, String> {
    let tokens = serde_json::to_string(&meta.tokens).map_err(|e| e.to_string())?;
    let mut map: HashMap<String, String> = [
        ("format", FORMAT_NAME.to_owned()),
        ("format_version", FORMAT_VERSION.to_string()),
        ("agent_id", meta.agent.agent.to_string()),
        ("tenant", meta.agent.tenant.to_string()),
        ("model_fingerprint", meta.model_fingerprint.clone()),
        ("engine_build", meta.engine_build.clone()),
        ("kv_type", meta.kv_type.as_str().to_owned()),
        ("token_count", meta.tokens.len().to_string()),
        ("tokens", tokens),
        ("kv_bytes", meta.kv_bytes.to_string()),
        ("kv_checksum", format!("{kv_checksum:08x}")),
        ("kv_checksum_algo", CHECKSUM_ALGO.to_owned()),
        ("created_unix_ms", meta.created_unix_ms.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let kv_bytes = usize::try_from(meta.kv_bytes).map_err(|e| e.to_string())?;
    encode_raw_header(&mut map, kv_bytes)
}

/// Seal `map` with its `meta_checksum` and serialize it with one U8 tensor
/// of `kv_bytes`. Separate from [`encode_header`] so tests can forge headers.
pub(crate) fn encode_raw_header(
    map: &mut HashMap<String, String>,
    kv_bytes: usize,
) -> Result<Vec<u8>, String> {
    map.remove(META_CHECKSUM_KEY);
    let sealed = format!("{:08x}", meta_checksum(map));
    map.insert(META_CHECKSUM_KEY.to_owned(), sealed);
    let tensor = TensorInfo {
        dtype: Dtype::U8,
        shape: vec![kv_bytes],
        data_offsets: (0, kv_bytes),
    };
    let metadata = Metadata::new(Some(map.clone()), vec![(TENSOR_NAME.to_owned(), tensor)])
        .map_err(|e| e.to_string())?;
    let mut json = serde_json::to_vec(&metadata).map_err(|e| e.to_string())?;
    // safetensors aligns the blob to 8 bytes by padding the header with spaces.
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

/// CRC-32 over every pair but `meta_checksum`, sorted by key, each string
/// length-prefixed so no two different maps hash the same bytes.
fn meta_checksum(map: &HashMap<String, String>) -> u32 {
    let mut pairs: Vec<_> = map
        .iter()
        .filter(|(k, _)| k.as_str() != META_CHECKSUM_KEY)
        .collect();
    pairs.sort();
    let mut hasher = crc32fast::Hasher::new();
    for (k, v) in pairs {
        for s in [k, v] {
            hasher.update(&(s.len() as u64).to_le_bytes());
            hasher.update(s.as_bytes());
        }
    }
    hasher.finalize()
}

/// Read and decode the header from the start of a file of `file_len` bytes,
/// reading exactly `8 + N` bytes and never the blob.
pub fn read_header(
    reader: &mut impl Read,
    file_len: u64,
    path: &Path,
) -> Result<FileHeader, StoreError> {
    if file_len < 8 {
        return Err(StoreError::corrupt(
            path,
            format!("file is {file_len} bytes, too short for the 8-byte header length"),
        ));
    }
    let mut prefix = [0u8; 8];
    reader
        .read_exact(&mut prefix)
        .map_err(|e| StoreError::io("read the header length of", path, e))?;
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER_BYTES {
        return Err(StoreError::corrupt(
            path,
            format!("header claims {n} bytes, more than the {MAX_HEADER_BYTES} allowed"),
        ));
    }
    if 8 + n > file_len {
        return Err(StoreError::corrupt(
            path,
            format!("header claims {n} bytes but the file is only {file_len} bytes (truncated)"),
        ));
    }
    // n <= MAX_HEADER_BYTES, so it fits in usize on every supported target.
    let mut json = vec![0u8; n as usize];
    reader
        .read_exact(&mut json)
        .map_err(|e| StoreError::io("read the header of", path, e))?;
    decode_header(&json).map_err(|p| p.at(path))
}

/// A whole agent file held in memory, checked as a load checks it: the
/// header, the exact length it describes, the blob's checksum. Returns the
/// header and the blob. (Loads map the file instead; this is the same check
/// over bytes, for the fuzz target and its replay test.)
pub fn decode_file<'b>(bytes: &'b [u8], path: &Path) -> Result<(FileHeader, &'b [u8]), StoreError> {
    let header = read_header(&mut &bytes[..], bytes.len() as u64, path)?;
    let expected = header.expected_file_len();
    if bytes.len() as u64 != expected {
        return Err(StoreError::corrupt(
            path,
            format!(
                "file is {} bytes but its header describes {expected}",
                bytes.len()
            ),
        ));
    }
    // data_offset <= expected == bytes.len(), so the slice is in bounds.
    let blob = &bytes[header.data_offset as usize..];
    crate::disk_store::verify_checksum(&header, checksum(blob), path)?;
    Ok((header, blob))
}

/// Fuzz entry point: any bytes give a verified file or an error, never a
/// panic, a hang or an allocation beyond the header limit; a file that
/// decodes must encode back to the same header.
pub fn fuzz_file(bytes: &[u8]) {
    let Ok((header, blob)) = decode_file(bytes, Path::new("fuzz-input.safetensors")) else {
        return;
    };
    let again = encode_header(&header.meta, checksum(blob))
        .ok()
        .and_then(|h| read_header(&mut h.as_slice(), u64::MAX, Path::new("re-encoded")).ok());
    assert!(
        again.is_some_and(|again| again.meta == header.meta),
        "an agent file that decodes does not survive re-encoding"
    );
}

/// Decode and check the JSON header (without the 8-byte prefix).
pub(crate) fn decode_header(json: &[u8]) -> Result<FileHeader, HeaderProblem> {
    let text = match std::str::from_utf8(json) {
        Ok(text) => text,
        Err(e) => return corrupt(format!("header is not UTF-8: {e}")),
    };
    let metadata: Metadata = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => return corrupt(format!("header is not a valid safetensors header: {e}")),
    };
    let Some(map) = metadata.metadata().as_ref() else {
        return corrupt("header has no __metadata__");
    };
    let format_version = check_format(map)?;
    let blob_len = check_tensor(&metadata)?;
    let meta = parse_meta(map, blob_len)?;
    let kv_checksum = parse_hex32(map, "kv_checksum")?;
    Ok(FileHeader {
        meta,
        format_version,
        kv_checksum,
        data_offset: 8 + json.len() as u64,
    })
}

fn field<'m>(map: &'m HashMap<String, String>, key: &str) -> Result<&'m str, HeaderProblem> {
    match map.get(key) {
        Some(v) => Ok(v),
        None => corrupt(format!("metadata lacks {key:?}")),
    }
}

fn number<T: std::str::FromStr>(
    map: &HashMap<String, String>,
    key: &str,
) -> Result<T, HeaderProblem> {
    let raw = field(map, key)?;
    match raw.parse() {
        Ok(v) => Ok(v),
        Err(_) => corrupt(format!("metadata {key} = {raw:?} is not a number")),
    }
}

fn parse_hex32(map: &HashMap<String, String>, key: &str) -> Result<u32, HeaderProblem> {
    let raw = field(map, key)?;
    match u32::from_str_radix(raw, 16) {
        Ok(v) if raw.len() == 8 => Ok(v),
        _ => corrupt(format!("metadata {key} = {raw:?} is not 8 hex digits")),
    }
}

/// Format name, version, checksum algorithm and the header's own checksum.
fn check_format(map: &HashMap<String, String>) -> Result<u32, HeaderProblem> {
    let format = field(map, "format")?;
    if format != FORMAT_NAME {
        return corrupt(format!("format is {format:?}, expected {FORMAT_NAME:?}"));
    }
    let version: u32 = number(map, "format_version")?;
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::Unsupported(format!(
            "format_version {version}; this build reads version {FORMAT_VERSION}"
        )));
    }
    let algo = field(map, "kv_checksum_algo")?;
    if algo != CHECKSUM_ALGO {
        return Err(HeaderProblem::Unsupported(format!(
            "kv_checksum_algo {algo:?}; this build knows {CHECKSUM_ALGO:?}"
        )));
    }
    let recorded = parse_hex32(map, META_CHECKSUM_KEY)?;
    let actual = meta_checksum(map);
    if recorded != actual {
        return corrupt(format!(
            "metadata checksum mismatch: header says {recorded:08x}, metadata hashes to {actual:08x}"
        ));
    }
    Ok(version)
}

/// Exactly one tensor, `kv_state`, U8, one dimension; returns its length.
fn check_tensor(metadata: &Metadata) -> Result<u64, HeaderProblem> {
    let tensors = metadata.tensors();
    let Some(info) = tensors.get(TENSOR_NAME) else {
        return corrupt(format!("header has no {TENSOR_NAME:?} tensor"));
    };
    if tensors.len() != 1 {
        return corrupt(format!(
            "header has {} tensors, expected only {TENSOR_NAME:?}",
            tensors.len()
        ));
    }
    if info.dtype != Dtype::U8 || info.shape.len() != 1 {
        return corrupt(format!(
            "{TENSOR_NAME} is {:?} {:?}, expected U8 [n_bytes]",
            info.dtype, info.shape
        ));
    }
    Ok(info.shape[0] as u64)
}

fn parse_meta(
    map: &HashMap<String, String>,
    blob_len: u64,
) -> Result<AgentRecordMeta, HeaderProblem> {
    let raw_agent = field(map, "agent_id")?;
    let agent = AgentId::parse(raw_agent)
        .or_else(|e| corrupt(format!("metadata agent_id {raw_agent:?} is invalid: {e}")))?;
    let tenant = match map.get("tenant") {
        None => TenantId::open(),
        Some(raw) => TenantId::parse_any(raw)
            .or_else(|e| corrupt(format!("metadata tenant {raw:?} is invalid: {e}")))?,
    };
    let raw_kv_type = field(map, "kv_type")?;
    let kv_type: KvType = raw_kv_type
        .parse()
        .or_else(|e| corrupt(format!("metadata kv_type: {e}")))?;
    let raw_tokens = field(map, "tokens")?;
    let tokens: Vec<TokenId> = serde_json::from_str(raw_tokens).or_else(|e| {
        corrupt(format!(
            "metadata tokens is not a JSON array of i32 token ids: {e}"
        ))
    })?;
    let token_count: u64 = number(map, "token_count")?;
    if token_count != tokens.len() as u64 {
        return corrupt(format!(
            "token_count is {token_count} but tokens holds {}",
            tokens.len()
        ));
    }
    let kv_bytes: u64 = number(map, "kv_bytes")?;
    if kv_bytes != blob_len {
        return corrupt(format!(
            "kv_bytes is {kv_bytes} but the {TENSOR_NAME} tensor is {blob_len} bytes"
        ));
    }
    Ok(AgentRecordMeta {
        agent: AgentKey::new(tenant, agent),
        model_fingerprint: field(map, "model_fingerprint")?.to_owned(),
        engine_build: field(map, "engine_build")?.to_owned(),
        kv_type,
        tokens,
        kv_bytes,
        created_unix_ms: number(map, "created_unix_ms")?,
    })
}

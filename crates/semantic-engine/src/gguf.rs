//! Our own GGUF header reader: a model file is untrusted input, so its
//! header is parsed here, bounded, before llama.cpp ever sees the file.
//!
//! Every count and length the file declares is checked against what the
//! rest of the file can still hold (`remaining bytes / smallest encoding`)
//! and against a sane cap *before* anything is allocated for it, so a header
//! claiming 2^60 keys or a 2^62-byte string is an error naming the field,
//! not an allocation failure or a long loop. Nested arrays are bounded in
//! depth, so a crafted file cannot overflow the stack.
//!
//! Pure parsing over a [`Read`]; [`write_header`] is its inverse (tests and
//! fuzz corpora craft files with it). Format reference: ggml's
//! `docs/gguf.md` (little-endian, versions 2 and 3).

use std::collections::HashSet;
use std::io::{BufReader, Read, Write};
use std::path::Path;

/// GGUF files start with these four bytes.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// Tensor data starts at a multiple of this unless `general.alignment` says.
pub const DEFAULT_ALIGNMENT: u32 = 32;
/// Metadata key-value pairs accepted (real models have a few dozen).
pub const MAX_KV_COUNT: u64 = 1 << 16;
/// Tensors accepted (the largest real models have a few thousand).
pub const MAX_TENSOR_COUNT: u64 = 1 << 20;
/// Longest string (a key, a value, a tensor name, an array element): chat
/// templates are tens of KiB, an embedded tokenizer JSON a few MiB.
pub const MAX_STRING_BYTES: u64 = 64 << 20;
/// Most elements in one array (vocabularies have up to ~300K tokens).
pub const MAX_ARRAY_LEN: u64 = 1 << 26;
/// Deepest nesting of arrays in arrays (llama.cpp itself reads none).
pub const MAX_ARRAY_DEPTH: usize = 4;
/// Largest header region read (real ones are at most tens of MiB): with
/// the per-item caps it bounds the memory a header takes, whatever the
/// file's size.
pub const MAX_HEADER_BYTES: u64 = 256 << 20;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_TENSOR_DIMS: u32 = 4;

/// What was wrong with a GGUF header; each names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a GGUF file (magic bytes {0:02x?}, expected \"GGUF\")")]
    BadMagic([u8; 4]),
    #[error("GGUF version {0} is not supported (only 2 and 3 are)")]
    UnsupportedVersion(u32),
    #[error(
        "the file ends inside the GGUF header while reading {what} at byte {offset} (truncated?)"
    )]
    Truncated { what: String, offset: u64 },
    #[error("the GGUF header is larger than the {MAX_HEADER_BYTES} bytes this reader accepts (at {what})")]
    HeaderTooLarge { what: String },
    #[error("GGUF header claims {claimed} {what}; the file has room for at most {room} (corrupt or truncated?)")]
    CountExceedsFile {
        what: String,
        claimed: u64,
        room: u64,
    },
    #[error("GGUF header claims {claimed} {what}; more than the {cap} this reader accepts")]
    CountOverCap {
        what: String,
        claimed: u64,
        cap: u64,
    },
    #[error("GGUF value type {ty} of {what} is not a known type")]
    BadValueType { what: String, ty: u32 },
    #[error("GGUF arrays nested deeper than {MAX_ARRAY_DEPTH} levels in {0}")]
    TooDeep(String),
    #[error("GGUF tensor data would start at byte {data_offset}, past the end of the {file_len}-byte file (truncated, or an absurd general.alignment?)")]
    DataPastEnd { data_offset: u64, file_len: u64 },
    #[error("GGUF metadata key {0:?} is not UTF-8 text")]
    KeyNotUtf8(String),
    #[error("GGUF metadata key {0:?} appears twice")]
    DuplicateKey(String),
    #[error("GGUF tensor {name:?}: {reason}")]
    BadTensor { name: String, reason: String },
    #[error("GGUF general.alignment {0} is not a power of two")]
    BadAlignment(String),
}

/// One metadata value. Strings are kept as bytes (GGUF does not promise
/// UTF-8) so that [`write_header`] reproduces a file exactly.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(Vec<u8>),
    Array(GgufArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// An array, typed so that memory stays within a small multiple of the
/// bytes it took in the file (one `GgufValue` per `u8` would be 40×).
#[derive(Clone, Debug, PartialEq)]
pub enum GgufArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<Vec<u8>>),
    Array(Vec<GgufArray>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

/// Type ids on the wire.
mod ty {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

impl GgufValue {
    fn type_id(&self) -> u32 {
        match self {
            Self::U8(_) => ty::U8,
            Self::I8(_) => ty::I8,
            Self::U16(_) => ty::U16,
            Self::I16(_) => ty::I16,
            Self::U32(_) => ty::U32,
            Self::I32(_) => ty::I32,
            Self::F32(_) => ty::F32,
            Self::Bool(_) => ty::BOOL,
            Self::String(_) => ty::STRING,
            Self::Array(_) => ty::ARRAY,
            Self::U64(_) => ty::U64,
            Self::I64(_) => ty::I64,
            Self::F64(_) => ty::F64,
        }
    }

    /// The value as text, when it is a UTF-8 string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => std::str::from_utf8(s).ok(),
            _ => None,
        }
    }
}

/// The smallest number of bytes one value of type `t` takes on the wire
/// (a string: its 8-byte length; an array: element type and count).
fn min_encoded_size(t: u32) -> Option<u64> {
    Some(match t {
        ty::U8 | ty::I8 | ty::BOOL => 1,
        ty::U16 | ty::I16 => 2,
        ty::U32 | ty::I32 | ty::F32 => 4,
        ty::U64 | ty::I64 | ty::F64 | ty::STRING => 8,
        ty::ARRAY => 12,
        _ => return None,
    })
}

/// One tensor's entry in the header.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: Vec<u8>,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Offset of its data from [`GgufHeader::data_offset`].
    pub offset: u64,
}

/// A parsed GGUF header.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: Vec<(String, GgufValue)>,
    pub tensors: Vec<TensorInfo>,
    /// `general.alignment`, or [`DEFAULT_ALIGNMENT`].
    pub alignment: u32,
    /// Where tensor data starts: the end of the tensor infos, aligned. Every
    /// byte before it is the header region (what the fingerprint hashes).
    pub data_offset: u64,
}

impl GgufHeader {
    /// The value of metadata key `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Read the header of the GGUF file at `path`.
    pub fn read_file(path: &Path) -> Result<Self, GgufError> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Self::read(BufReader::new(file), len)
    }

    /// Read a header from the start of a file of `file_len` bytes.
    pub fn read(reader: impl Read, file_len: u64) -> Result<Self, GgufError> {
        let mut r = Reader {
            inner: reader,
            pos: 0,
            len: file_len.min(MAX_HEADER_BYTES),
            file_len,
        };
        let magic: [u8; 4] = r.array("the magic bytes")?;
        if &magic != MAGIC {
            return Err(GgufError::BadMagic(magic));
        }
        let version = r.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion(version));
        }
        let tensor_count = r.u64("the tensor count")?;
        let kv_count = r.u64("the metadata key count")?;
        // A tensor info is at least a name length, n_dims, type and offset.
        r.check_count("tensors", tensor_count, 8 + 4 + 4 + 8, MAX_TENSOR_COUNT)?;
        // A pair is at least a key length, a type and a one-byte value.
        r.check_count("metadata keys", kv_count, 8 + 4 + 1, MAX_KV_COUNT)?;
        let metadata = read_metadata(&mut r, kv_count)?;
        let alignment = alignment(&metadata)?;
        let tensors = (0..tensor_count)
            .map(|_| read_tensor_info(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        let data_offset = r.pos.next_multiple_of(u64::from(alignment));
        if data_offset > file_len {
            return Err(GgufError::DataPastEnd {
                data_offset,
                file_len,
            });
        }
        check_tensor_offsets(&tensors, data_offset, file_len)?;
        Ok(Self {
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
        })
    }
}

fn read_metadata(
    r: &mut Reader<impl Read>,
    count: u64,
) -> Result<Vec<(String, GgufValue)>, GgufError> {
    let mut seen = HashSet::new();
    // `count` was checked against the file's size and MAX_KV_COUNT.
    let mut metadata = Vec::with_capacity(count as usize);
    for i in 0..count {
        let key = r.string(&format!("metadata key {i}"))?;
        // The format says keys are ASCII; a lossy conversion would merge
        // distinct keys and change the header's bytes (found by fuzzing).
        let key = String::from_utf8(key).map_err(|e| {
            GgufError::KeyNotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned())
        })?;
        let t = r.u32(&format!("the type of {key:?}"))?;
        let value = r.value(t, &key, 0)?;
        if !seen.insert(key.clone()) {
            return Err(GgufError::DuplicateKey(key));
        }
        metadata.push((key, value));
    }
    Ok(metadata)
}

fn alignment(metadata: &[(String, GgufValue)]) -> Result<u32, GgufError> {
    let value = metadata
        .iter()
        .find(|(k, _)| k == "general.alignment")
        .map(|(_, v)| v);
    match value {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(GgufValue::U32(a)) if a.is_power_of_two() => Ok(*a),
        Some(other) => Err(GgufError::BadAlignment(format!("{other:?}"))),
    }
}

fn read_tensor_info(r: &mut Reader<impl Read>) -> Result<TensorInfo, GgufError> {
    let name = r.string("a tensor name")?;
    let shown = String::from_utf8_lossy(&name).into_owned();
    let bad = |reason: String| GgufError::BadTensor {
        name: shown.clone(),
        reason,
    };
    let n_dims = r.u32(&format!("the dimension count of tensor {shown:?}"))?;
    if n_dims > MAX_TENSOR_DIMS {
        return Err(bad(format!(
            "{n_dims} dimensions; ggml tensors have at most {MAX_TENSOR_DIMS}"
        )));
    }
    let dims = (0..n_dims)
        .map(|_| r.u64(&format!("a dimension of tensor {shown:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    // ggml keeps dimensions and the element count in int64.
    let elements = dims.iter().try_fold(1i64, |n, &d| {
        i64::try_from(d).ok().and_then(|d| n.checked_mul(d))
    });
    if elements.is_none() {
        return Err(bad(format!(
            "dimensions {dims:?} overflow the element count"
        )));
    }
    let ggml_type = r.u32(&format!("the type of tensor {shown:?}"))?;
    let offset = r.u64(&format!("the data offset of tensor {shown:?}"))?;
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
    })
}

/// Each tensor's data must start inside the file (llama.cpp checks sizes,
/// which need ggml's type table).
fn check_tensor_offsets(
    tensors: &[TensorInfo],
    data_offset: u64,
    file_len: u64,
) -> Result<(), GgufError> {
    let data_len = file_len.saturating_sub(data_offset);
    for t in tensors {
        if t.offset > data_len {
            return Err(GgufError::BadTensor {
                name: String::from_utf8_lossy(&t.name).into_owned(),
                reason: format!(
                    "data at offset {} but the file holds only {data_len} bytes of tensor data",
                    t.offset
                ),
            });
        }
    }
    Ok(())
}

/// A byte source that knows its position and how much of the file is left.
struct Reader<R> {
    inner: R,
    pos: u64,
    /// The file's length, or [`MAX_HEADER_BYTES`] when that is less.
    len: u64,
    file_len: u64,
}

impl<R: Read> Reader<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), GgufError> {
        if (buf.len() as u64) > self.remaining() {
            if self.len < self.file_len {
                return Err(GgufError::HeaderTooLarge {
                    what: what.to_owned(),
                });
            }
            return Err(self.truncated(what));
        }
        match self.inner.read_exact(buf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(self.truncated(what))
            }
            Err(e) => return Err(e.into()),
        }
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn truncated(&self, what: &str) -> GgufError {
        GgufError::Truncated {
            what: what.to_owned(),
            offset: self.pos,
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Refuse `claimed` items of at least `min_size` bytes each when the
    /// rest of the file cannot hold them or they exceed `cap`.
    fn check_count(
        &self,
        what: &str,
        claimed: u64,
        min_size: u64,
        cap: u64,
    ) -> Result<(), GgufError> {
        let room = self.remaining() / min_size.max(1);
        if claimed > room {
            return Err(GgufError::CountExceedsFile {
                what: what.to_owned(),
                claimed,
                room,
            });
        }
        if claimed > cap {
            return Err(GgufError::CountOverCap {
                what: what.to_owned(),
                claimed,
                cap,
            });
        }
        Ok(())
    }

    fn string(&mut self, what: &str) -> Result<Vec<u8>, GgufError> {
        let len = self.u64(&format!("the length of {what}"))?;
        self.check_count(&format!("bytes in {what}"), len, 1, MAX_STRING_BYTES)?;
        // `len` fits: it is at most MAX_STRING_BYTES and the file's remainder.
        let mut buf = vec![0u8; len as usize];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    fn value(&mut self, t: u32, key: &str, depth: usize) -> Result<GgufValue, GgufError> {
        Ok(match t {
            ty::U8 => GgufValue::U8(self.array::<1>(key)?[0]),
            ty::I8 => GgufValue::I8(i8::from_le_bytes(self.array(key)?)),
            ty::U16 => GgufValue::U16(u16::from_le_bytes(self.array(key)?)),
            ty::I16 => GgufValue::I16(i16::from_le_bytes(self.array(key)?)),
            ty::U32 => GgufValue::U32(self.u32(key)?),
            ty::I32 => GgufValue::I32(i32::from_le_bytes(self.array(key)?)),
            ty::F32 => GgufValue::F32(f32::from_le_bytes(self.array(key)?)),
            ty::BOOL => GgufValue::Bool(self.array::<1>(key)?[0] != 0),
            ty::STRING => GgufValue::String(self.string(&format!("the value of {key:?}"))?),
            ty::ARRAY => GgufValue::Array(self.array_value(key, depth)?),
            ty::U64 => GgufValue::U64(self.u64(key)?),
            ty::I64 => GgufValue::I64(i64::from_le_bytes(self.array(key)?)),
            ty::F64 => GgufValue::F64(f64::from_le_bytes(self.array(key)?)),
            _ => {
                return Err(GgufError::BadValueType {
                    what: format!("{key:?}"),
                    ty: t,
                })
            }
        })
    }

    fn array_value(&mut self, key: &str, depth: usize) -> Result<GgufArray, GgufError> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::TooDeep(format!("{key:?}")));
        }
        let t = self.u32(&format!("the element type of {key:?}"))?;
        let Some(min_size) = min_encoded_size(t) else {
            return Err(GgufError::BadValueType {
                what: format!("the elements of {key:?}"),
                ty: t,
            });
        };
        let n = self.u64(&format!("the length of array {key:?}"))?;
        self.check_count(
            &format!("elements in array {key:?}"),
            n,
            min_size,
            MAX_ARRAY_LEN,
        )?;
        let k = key;
        Ok(match t {
            ty::U8 => GgufArray::U8(self.items(n, |r| Ok(r.array::<1>(k)?[0]))?),
            ty::I8 => GgufArray::I8(self.items(n, |r| Ok(i8::from_le_bytes(r.array(k)?)))?),
            ty::U16 => GgufArray::U16(self.items(n, |r| Ok(u16::from_le_bytes(r.array(k)?)))?),
            ty::I16 => GgufArray::I16(self.items(n, |r| Ok(i16::from_le_bytes(r.array(k)?)))?),
            ty::U32 => GgufArray::U32(self.items(n, |r| r.u32(k))?),
            ty::I32 => GgufArray::I32(self.items(n, |r| Ok(i32::from_le_bytes(r.array(k)?)))?),
            ty::F32 => GgufArray::F32(self.items(n, |r| Ok(f32::from_le_bytes(r.array(k)?)))?),
            ty::BOOL => GgufArray::Bool(self.items(n, |r| Ok(r.array::<1>(k)?[0] != 0))?),
            ty::STRING => {
                let what = format!("an element of {k:?}");
                GgufArray::String(self.items(n, |r| r.string(&what))?)
            }
            ty::ARRAY => GgufArray::Array(self.items(n, |r| r.array_value(k, depth + 1))?),
            ty::U64 => GgufArray::U64(self.items(n, |r| r.u64(k))?),
            ty::I64 => GgufArray::I64(self.items(n, |r| Ok(i64::from_le_bytes(r.array(k)?)))?),
            // min_encoded_size knows no other type.
            _ => GgufArray::F64(self.items(n, |r| Ok(f64::from_le_bytes(r.array(k)?)))?),
        })
    }

    /// `n` items read by `read`; `n` was already checked against the
    /// file's remainder and [`MAX_ARRAY_LEN`], so reserving it is bounded.
    fn items<T>(
        &mut self,
        n: u64,
        mut read: impl FnMut(&mut Self) -> Result<T, GgufError>,
    ) -> Result<Vec<T>, GgufError> {
        let mut items = Vec::with_capacity(n as usize);
        for _ in 0..n {
            items.push(read(self)?);
        }
        Ok(items)
    }
}

/// Serialise `header` (without tensor data): the exact bytes [`GgufHeader::read`]
/// parsed, zero-padded to `header.alignment`. Tensor offsets are written as
/// given, so appending the original data region keeps them valid; the
/// returned length is the new data offset.
pub fn write_header(header: &GgufHeader, out: &mut impl Write) -> std::io::Result<u64> {
    let mut w = CountingWriter { inner: out, pos: 0 };
    w.put(MAGIC)?;
    w.put(&header.version.to_le_bytes())?;
    w.put(&(header.tensors.len() as u64).to_le_bytes())?;
    w.put(&(header.metadata.len() as u64).to_le_bytes())?;
    for (key, value) in &header.metadata {
        w.string(key.as_bytes())?;
        w.put(&value.type_id().to_le_bytes())?;
        w.value(value)?;
    }
    for t in &header.tensors {
        w.string(&t.name)?;
        w.put(&(t.dims.len() as u32).to_le_bytes())?;
        for d in &t.dims {
            w.put(&d.to_le_bytes())?;
        }
        w.put(&t.ggml_type.to_le_bytes())?;
        w.put(&t.offset.to_le_bytes())?;
    }
    let end = w.pos.next_multiple_of(u64::from(header.alignment.max(1)));
    // Streamed, not allocated: an alignment may be up to 2^31.
    let padding = end - w.pos;
    std::io::copy(&mut std::io::repeat(0).take(padding), w.inner)?;
    Ok(end)
}

struct CountingWriter<'w, W> {
    inner: &'w mut W,
    pos: u64,
}

impl<W: Write> CountingWriter<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.pos += bytes.len() as u64;
        self.inner.write_all(bytes)
    }

    fn string(&mut self, s: &[u8]) -> std::io::Result<()> {
        self.put(&(s.len() as u64).to_le_bytes())?;
        self.put(s)
    }

    fn value(&mut self, value: &GgufValue) -> std::io::Result<()> {
        match value {
            GgufValue::U8(v) => self.put(&[*v]),
            GgufValue::I8(v) => self.put(&v.to_le_bytes()),
            GgufValue::U16(v) => self.put(&v.to_le_bytes()),
            GgufValue::I16(v) => self.put(&v.to_le_bytes()),
            GgufValue::U32(v) => self.put(&v.to_le_bytes()),
            GgufValue::I32(v) => self.put(&v.to_le_bytes()),
            GgufValue::F32(v) => self.put(&v.to_le_bytes()),
            GgufValue::Bool(v) => self.put(&[u8::from(*v)]),
            GgufValue::String(s) => self.string(s),
            GgufValue::Array(a) => self.array(a),
            GgufValue::U64(v) => self.put(&v.to_le_bytes()),
            GgufValue::I64(v) => self.put(&v.to_le_bytes()),
            GgufValue::F64(v) => self.put(&v.to_le_bytes()),
        }
    }
}

impl<W: Write> CountingWriter<'_, W> {
    fn array(&mut self, a: &GgufArray) -> std::io::Result<()> {
        macro_rules! each {
            ($t:expr, $items:expr, $put:expr) => {{
                self.put(&($t as u32).to_le_bytes())?;
                self.put(&($items.len() as u64).to_le_bytes())?;
                $items.iter().try_for_each(|v| $put(self, v))
            }};
        }
        match a {
            GgufArray::U8(v) => each!(ty::U8, v, |w: &mut Self, x: &u8| w.put(&[*x])),
            GgufArray::I8(v) => each!(ty::I8, v, |w: &mut Self, x: &i8| w.put(&x.to_le_bytes())),
            GgufArray::U16(v) => each!(ty::U16, v, |w: &mut Self, x: &u16| w.put(&x.to_le_bytes())),
            GgufArray::I16(v) => each!(ty::I16, v, |w: &mut Self, x: &i16| w.put(&x.to_le_bytes())),
            GgufArray::U32(v) => each!(ty::U32, v, |w: &mut Self, x: &u32| w.put(&x.to_le_bytes())),
            GgufArray::I32(v) => each!(ty::I32, v, |w: &mut Self, x: &i32| w.put(&x.to_le_bytes())),
            GgufArray::F32(v) => each!(ty::F32, v, |w: &mut Self, x: &f32| w.put(&x.to_le_bytes())),
            GgufArray::Bool(v) => {
                each!(ty::BOOL, v, |w: &mut Self, x: &bool| w.put(&[u8::from(*x)]))
            }
            GgufArray::String(v) => each!(ty::STRING, v, |w: &mut Self, x: &Vec<u8>| w.string(x)),
            GgufArray::Array(v) => each!(ty::ARRAY, v, |w: &mut Self, x: &GgufArray| w.array(x)),
            GgufArray::U64(v) => each!(ty::U64, v, |w: &mut Self, x: &u64| w.put(&x.to_le_bytes())),
            GgufArray::I64(v) => each!(ty::I64, v, |w: &mut Self, x: &i64| w.put(&x.to_le_bytes())),
            GgufArray::F64(v) => each!(ty::F64, v, |w: &mut Self, x: &f64| w.put(&x.to_le_bytes())),
        }
    }
}

/// Copy the GGUF at `src` to `dst` with its header changed by `edit`
/// (tests craft hostile models this way): the new header, then the tensor
/// data exactly as it was, so tensor offsets stay valid.
pub fn copy_with_header(
    src: &Path,
    dst: &Path,
    edit: impl FnOnce(&mut GgufHeader),
) -> Result<(), GgufError> {
    let mut header = GgufHeader::read_file(src)?;
    let data_offset = header.data_offset;
    edit(&mut header);
    let mut out = std::io::BufWriter::new(std::fs::File::create(dst)?);
    write_header(&header, &mut out)?;
    let mut data = std::fs::File::open(src)?;
    std::io::Seek::seek(&mut data, std::io::SeekFrom::Start(data_offset))?;
    std::io::copy(&mut data, &mut out)?;
    out.flush()?;
    Ok(())
}

impl GgufHeader {
    /// Set metadata `key` to `value`, replacing the old value in place.
    pub fn set(&mut self, key: &str, value: GgufValue) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.metadata.push((key.to_owned(), value)),
        }
    }
}

/// Fuzz entry point: parse `bytes` as the start of a GGUF file. Any input
/// must give a header or an error, never a panic, a hang or a huge
/// allocation; a header that parses must read back the same once
/// serialised (the assertion is the fuzzer's oracle).
pub fn fuzz_header(bytes: &[u8]) {
    let Ok(header) = GgufHeader::read(bytes, bytes.len() as u64) else {
        return;
    };
    let mut out = Vec::new();
    if write_header(&header, &mut out).is_err() {
        return;
    }
    // The original's length, so tensor offsets into its data stay valid.
    let len = (bytes.len() as u64).max(out.len() as u64);
    let again = GgufHeader::read(out.as_slice(), len);
    // Debug, not ==: a NaN value equals itself only in its printed form.
    let same = again.is_ok_and(|again| format!("{again:?}") == format!("{header:?}"));
    assert!(same, "a GGUF header does not read back after serialising");
}

#[cfg(test)]
#[path = "gguf_tests.rs"]
mod tests;

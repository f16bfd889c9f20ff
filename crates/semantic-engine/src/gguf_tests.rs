//! Crafted headers: absurd counts and lengths are refused before any
//! allocation, with errors that name the field. (Real models: tests/gguf.rs.)

use std::time::Instant;

use super::*;

/// A valid header: `general.alignment`, a string, a nested array, one tensor.
fn small_header() -> GgufHeader {
    GgufHeader {
        version: 3,
        metadata: vec![
            ("general.alignment".into(), GgufValue::U32(32)),
            ("general.name".into(), GgufValue::String(b"tiny".to_vec())),
            (
                "nested".into(),
                GgufValue::Array(GgufArray::Array(vec![
                    GgufArray::U8(vec![1, 2]),
                    GgufArray::String(vec![b"a".to_vec()]),
                ])),
            ),
            ("flag".into(), GgufValue::Bool(true)),
            ("pi".into(), GgufValue::F64(std::f64::consts::PI)),
        ],
        tensors: vec![TensorInfo {
            name: b"w".to_vec(),
            dims: vec![4, 2],
            ggml_type: 0,
            offset: 0,
        }],
        alignment: 32,
        data_offset: 0,
    }
}

/// `header` serialised, followed by `data_len` bytes of tensor data.
fn file_of(header: &GgufHeader, data_len: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_header(header, &mut bytes).unwrap();
    bytes.resize(bytes.len() + data_len, 0);
    bytes
}

fn read(bytes: &[u8]) -> Result<GgufHeader, GgufError> {
    GgufHeader::read(bytes, bytes.len() as u64)
}

/// The 24 bytes before the first key: magic, version, tensor and key counts.
fn preamble(tensors: u64, keys: u64) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&tensors.to_le_bytes());
    b.extend_from_slice(&keys.to_le_bytes());
    b
}

#[test]
fn a_written_header_reads_back_with_its_data_offset() {
    let bytes = file_of(&small_header(), 64);
    let header = read(&bytes).unwrap();
    assert_eq!(header.data_offset, bytes.len() as u64 - 64);
    assert_eq!(header.data_offset % 32, 0);
    let mut expected = small_header();
    expected.data_offset = header.data_offset;
    assert_eq!(header, expected);
    assert_eq!(
        header.get("general.name").and_then(GgufValue::as_str),
        Some("tiny")
    );
    fuzz_header(&bytes);
}

#[test]
fn two_to_the_sixty_keys_are_refused_before_allocating() {
    let mut bytes = preamble(0, 1 << 60);
    bytes.resize(4096, 0);
    let started = Instant::now();
    let e = read(&bytes).unwrap_err().to_string();
    assert!(
        started.elapsed().as_millis() < 100,
        "took {:?}",
        started.elapsed()
    );
    assert!(
        e.contains("claims 1152921504606846976 metadata keys; the file has room for at most 313"),
        "{e}"
    );
}

#[test]
fn absurd_tensor_counts_are_refused() {
    let mut bytes = preamble(u64::MAX, 0);
    bytes.resize(100, 0);
    let e = read(&bytes).unwrap_err().to_string();
    assert!(e.contains(&format!("claims {} tensors", u64::MAX)), "{e}");
}

#[test]
fn a_string_of_two_to_the_sixty_two_bytes_is_refused() {
    let mut bytes = preamble(0, 1);
    bytes.extend_from_slice(&4u64.to_le_bytes());
    bytes.extend_from_slice(b"name");
    bytes.extend_from_slice(&8u32.to_le_bytes()); // a string value
    bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
    bytes.resize(bytes.len() + 100, b'x');
    let e = read(&bytes).unwrap_err().to_string();
    assert!(
        e.contains("claims 4611686018427387904 bytes in the value of \"name\""),
        "{e}"
    );
    assert!(e.contains("room for at most 100"), "{e}");
}

#[test]
fn huge_arrays_and_deep_nesting_are_refused() {
    let mut bytes = preamble(0, 1);
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(b"a");
    bytes.extend_from_slice(&9u32.to_le_bytes());
    bytes.extend_from_slice(&10u32.to_le_bytes()); // u64 elements
    bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let e = read(&bytes).unwrap_err().to_string();
    assert!(e.contains("elements in array \"a\""), "{e}");

    let mut deep = small_header();
    let mut a = GgufArray::U8(vec![1]);
    for _ in 0..MAX_ARRAY_DEPTH {
        a = GgufArray::Array(vec![a]);
    }
    deep.set("deep", GgufValue::Array(a));
    let e = read(&file_of(&deep, 64)).unwrap_err();
    assert!(matches!(e, GgufError::TooDeep(_)), "{e}");
}

#[test]
fn a_truncated_file_is_refused_naming_where_it_ends() {
    let bytes = file_of(&small_header(), 64);
    let header_len = bytes.len() - 64;
    // Cut after the counts, the counts themselves no longer fit.
    let e = read(&bytes[..30]).unwrap_err().to_string();
    assert!(
        e.contains("claims 1 tensors; the file has room for at most 0"),
        "{e}"
    );
    for cut in [3, 10, header_len / 2, header_len - 40] {
        let e = read(&bytes[..cut]).unwrap_err();
        let cut_short = matches!(
            e,
            GgufError::Truncated { .. } | GgufError::CountExceedsFile { .. }
        );
        assert!(cut_short, "cut at {cut}: {e}");
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}

#[test]
fn bad_magic_version_alignment_and_tensors_are_named() {
    let e = read(b"GGML\x03\0\0\0").unwrap_err().to_string();
    assert!(e.contains("not a GGUF file"), "{e}");
    let mut v1 = file_of(&small_header(), 64);
    v1[4] = 1;
    let e = read(&v1).unwrap_err().to_string();
    assert!(e.contains("version 1 is not supported"), "{e}");

    let mut odd = small_header();
    odd.set("general.alignment", GgufValue::U32(24));
    let e = read(&file_of(&odd, 64)).unwrap_err().to_string();
    assert!(e.contains("general.alignment"), "{e}");

    // Found by fuzzing: an alignment of 2^31 put the data offset gigabytes
    // past the end of the file (and the writer allocated the padding).
    let mut bytes = Vec::new();
    write_header(&small_header(), &mut bytes).unwrap();
    let at = bytes
        .windows(17)
        .position(|w| w == b"general.alignment")
        .unwrap();
    bytes[at + 17 + 4..at + 17 + 8].copy_from_slice(&(1u32 << 31).to_le_bytes());
    let e = read(&bytes).unwrap_err().to_string();
    assert!(
        e.contains("would start at byte 2147483648, past the end"),
        "{e}"
    );
    fuzz_header(&bytes);

    let mut dims = small_header();
    dims.tensors[0].dims = vec![1; 5];
    let e = read(&file_of(&dims, 64)).unwrap_err().to_string();
    assert!(e.contains("tensor \"w\": 5 dimensions"), "{e}");

    let mut overflow = small_header();
    overflow.tensors[0].dims = vec![1 << 40, 1 << 40];
    let e = read(&file_of(&overflow, 64)).unwrap_err().to_string();
    assert!(e.contains("overflow"), "{e}");

    let mut outside = small_header();
    outside.tensors[0].offset = 1 << 20;
    let e = read(&file_of(&outside, 64)).unwrap_err().to_string();
    assert!(e.contains("64 bytes of tensor data"), "{e}");
}

/// Found by fuzzing: a key with a non-UTF-8 byte was kept lossily, so it
/// did not serialise back to the bytes it came from (and two such keys
/// could collide). Such keys are now refused, naming the key.
#[test]
fn a_key_that_is_not_utf8_is_refused() {
    let mut bytes = file_of(&small_header(), 64);
    let at = bytes
        .windows(17)
        .position(|w| w == b"general.alignment")
        .unwrap();
    bytes[at + 16] = 0xff;
    let e = read(&bytes).unwrap_err().to_string();
    assert!(
        e.contains("\"general.alignmen\u{fffd}\" is not UTF-8"),
        "{e}"
    );
    fuzz_header(&bytes);
}

#[test]
fn a_duplicate_key_is_refused() {
    let mut dup = small_header();
    dup.metadata.push(("general.name".into(), GgufValue::U8(1)));
    let e = read(&file_of(&dup, 64)).unwrap_err().to_string();
    assert!(e.contains("\"general.name\" appears twice"), "{e}");
}

#[test]
fn the_fuzz_entry_point_survives_every_prefix_and_bit_flip() {
    let bytes = file_of(&small_header(), 64);
    for cut in 0..bytes.len() {
        fuzz_header(&bytes[..cut]);
    }
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[i] ^= 1 << bit;
            fuzz_header(&flipped);
        }
    }
}

//! Decodes one log object's bytes into KMS calls, with per-object limits and per-record errors.

use std::cell::RefCell;

use memchr::memmem;

use super::extract::{extract, extract_at};
use super::gzip::{decompress_with, GzipError};
use super::normalise::{normalise, KMS_EVENT_SOURCE};
use super::record::RawRecord;
use super::split::{skip_value, split_records, walk_records, SplitError};
use super::structural::{scan_object, Found};
use super::KmsCall;

/// Per-object limits. Both guard against hostile or broken objects.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest decompressed object accepted (gzip bombs stop here).
    pub max_object_bytes: usize,
    /// Most records accepted in one object.
    pub max_records_per_object: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_object_bytes: 512 << 20,
            max_records_per_object: 1_000_000,
        }
    }
}

/// Counts of one object's decoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    pub compressed_bytes: u64,
    pub decompressed_bytes: u64,
    pub records: u64,
    pub kms_records: u64,
    pub non_kms_records: u64,
    pub malformed_records: u64,
}

impl DecodeStats {
    pub fn add(&mut self, o: &DecodeStats) {
        self.compressed_bytes += o.compressed_bytes;
        self.decompressed_bytes += o.decompressed_bytes;
        self.records += o.records;
        self.kms_records += o.kms_records;
        self.non_kms_records += o.non_kms_records;
        self.malformed_records += o.malformed_records;
    }
}

/// A record that could not be used; the rest of its object still is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index}{}: {message}", event_id.as_ref().map(|e| format!(" (eventID {e})")).unwrap_or_default())]
pub struct RecordError {
    /// Position in the object's `Records` array, from 0.
    pub index: usize,
    pub event_id: Option<String>,
    pub message: String,
}

/// Why a whole object could not be used. Nothing of such an object enters the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Gzip(#[from] GzipError),
    #[error("not a CloudTrail log file: {0}")]
    NotJson(String),
    #[error("not a CloudTrail log file: no \"Records\" array")]
    NoRecords,
    #[error("{count} records exceed max_records_per_object ({limit})")]
    TooManyRecords { count: usize, limit: usize },
}

impl ObjectError {
    /// A short, fixed label for counters and summaries.
    /// Every value [`ObjectError::kind`] returns, in declaration order.
    pub const KINDS: [&'static str; 6] = [
        "gzip_truncated",
        "gzip_corrupt",
        "too_large",
        "not_json",
        "no_records",
        "too_many_records",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            ObjectError::Gzip(GzipError::Truncated) => "gzip_truncated",
            ObjectError::Gzip(GzipError::Corrupt(_)) => "gzip_corrupt",
            ObjectError::Gzip(GzipError::TooLarge { .. }) => "too_large",
            ObjectError::NotJson(_) => "not_json",
            ObjectError::NoRecords => "no_records",
            ObjectError::TooManyRecords { .. } => "too_many_records",
        }
    }
}

/// How many record errors of one object are kept with their messages; the rest are only counted.
pub const MAX_RECORD_ERRORS_KEPT: usize = 20;

/// What one object yielded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedObject {
    /// KMS calls in record order.
    pub calls: Vec<KmsCall>,
    pub stats: DecodeStats,
    /// The first [`MAX_RECORD_ERRORS_KEPT`] malformed records; `stats.malformed_records` counts all.
    pub record_errors: Vec<RecordError>,
}

/// The largest decompression buffer a thread keeps for its next object: CloudTrail objects are
/// rarely over a few megabytes of JSON, and a larger one's buffer is freed after it.
pub const MAX_KEPT_BUFFER_BYTES: usize = 32 << 20;

thread_local! {
    /// This thread's decompression buffer, kept between objects by [`decode_object_reusing`].
    static JSON: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Decodes an object: gzip (or plain JSON), the `Records` array, and each KMS record. The
/// decompressed JSON is freed after: for callers on a shared pool of threads (`serve` decodes on
/// tokio's blocking threads, however many that pool holds).
pub fn decode_object(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedObject, ObjectError> {
    decode_object_in(bytes, limits, &mut Vec::new())
}

/// As [`decode_object`], reusing this thread's decompression buffer (up to
/// [`MAX_KEPT_BUFFER_BYTES`] is kept for the next object): for dedicated decode threads, one per
/// core, as `replay` has. A fresh buffer for each object was zeroed and faulted in again, as much
/// time as the inflating itself.
pub fn decode_object_reusing(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<DecodedObject, ObjectError> {
    // Taken out of the thread's slot, so a nested call (there is none) would get a fresh one.
    let mut json = JSON.take();
    let out = decode_object_in(bytes, limits, &mut json);
    if json.capacity() <= MAX_KEPT_BUFFER_BYTES {
        json.clear();
        JSON.set(json);
    }
    out
}

/// Decodes an object, decompressing into `buf` when it is gzip.
fn decode_object_in(
    bytes: &[u8],
    limits: &DecodeLimits,
    buf: &mut Vec<u8>,
) -> Result<DecodedObject, ObjectError> {
    let json = decompress_with(bytes, limits.max_object_bytes, buf)?;
    decode_json(json, bytes.len(), limits)
}

/// Decodes an object's JSON (`compressed` bytes as stored): in one pass when it is valid UTF-8
/// throughout, as CloudTrail writes it; else record by record, so that a record with invalid
/// UTF-8 is rejected alone.
fn decode_json(
    json: &[u8],
    compressed: usize,
    limits: &DecodeLimits,
) -> Result<DecodedObject, ObjectError> {
    if let Ok(text) = simdutf8::basic::from_utf8(json) {
        match decode_text(text, compressed, limits) {
            Ok(out) => return Ok(out),
            Err(Stop::Split(e)) => return Err(object_error(e)),
            Err(Stop::Redo) => {}
        }
    }
    decode_records(json, compressed, limits)
}

fn object_error(e: SplitError) -> ObjectError {
    match e {
        SplitError::NoRecords => ObjectError::NoRecords,
        e => ObjectError::NotJson(e.to_string()),
    }
}

/// Why [`decode_text`] stopped.
enum Stop {
    /// The file's structure is broken.
    Split(SplitError),
    /// Too many records, or a duplicated `Records` key: [`decode_records`] does it again (and
    /// says which) as it always did.
    Redo,
}

impl From<SplitError> for Stop {
    fn from(e: SplitError) -> Self {
        Stop::Split(e)
    }
}

/// Decodes valid UTF-8 JSON in one walk over it, with the results of [`decode_records`]. Each
/// record is scanned for its end and for a mention of KMS in the same pass: one without is skipped
/// there; one with is parsed straight from the file by [`extract_at`] (which finds its end too),
/// so a KMS record is scanned up to its mention and parsed once, and no byte is searched twice.
fn decode_text(
    text: &str,
    compressed: usize,
    limits: &DecodeLimits,
) -> Result<DecodedObject, Stop> {
    let json = text.as_bytes();
    let needle = KMS_EVENT_SOURCE.as_bytes();
    let mut out = DecodedObject::of(compressed, json);
    let mut seen = 0;
    let count = walk_records(json, |start| {
        let index = seen;
        seen += 1;
        if index >= limits.max_records_per_object {
            return Err(Stop::Redo);
        }
        if json.get(start) == Some(&b'{') {
            match scan_object(json, start, needle) {
                Some(Found::End(end)) => {
                    out.stats.non_kms_records += 1;
                    return Ok(end);
                }
                Some(Found::Mention) => {
                    if let Some((record, end)) = extract_at(text, start) {
                        out.record(index, &record);
                        return Ok(end);
                    }
                }
                // Cut short: `skip_value` says where.
                None => {}
            }
        }
        // Not an object, or one the fast path left: the value's end, then serde_json for it if it
        // mentions KMS. The fast path has had its go (it takes only objects).
        let end = skip_value(json, start)?;
        if memmem::find(&json[start..end], needle).is_none() {
            out.stats.non_kms_records += 1;
        } else {
            out.parse_slowly(index, &text[start..end]);
        }
        Ok(end)
    })?;
    if count != seen {
        return Err(Stop::Redo);
    }
    out.stats.records = count as u64;
    Ok(out)
}

/// Decodes an object's JSON record by record: the records split out first, each checked for
/// UTF-8 on its own.
fn decode_records(
    json: &[u8],
    compressed: usize,
    limits: &DecodeLimits,
) -> Result<DecodedObject, ObjectError> {
    let records = split_records(json).map_err(object_error)?;
    if records.len() > limits.max_records_per_object {
        return Err(ObjectError::TooManyRecords {
            count: records.len(),
            limit: limits.max_records_per_object,
        });
    }
    let mut out = DecodedObject::of(compressed, json);
    out.stats.records = records.len() as u64;
    let finder = memmem::Finder::new(KMS_EVENT_SOURCE.as_bytes());
    for (index, raw) in records.iter().enumerate() {
        // Cheap rejection: a record that does not mention KMS anywhere is not a KMS call.
        if finder.find(raw).is_none() {
            out.stats.non_kms_records += 1;
            continue;
        }
        match std::str::from_utf8(raw) {
            Ok(text) => out.candidate(index, text),
            Err(e) => out.reject(RecordError {
                index,
                event_id: None,
                message: format!("invalid UTF-8: {e}"),
            }),
        }
    }
    Ok(out)
}

impl DecodedObject {
    /// Nothing decoded yet of an object of `compressed` bytes and this `json`.
    fn of(compressed: usize, json: &[u8]) -> Self {
        DecodedObject {
            stats: DecodeStats {
                compressed_bytes: compressed as u64,
                decompressed_bytes: json.len() as u64,
                ..DecodeStats::default()
            },
            ..DecodedObject::default()
        }
    }

    /// Record `index`, which mentions KMS: parsed (the fast path, else serde_json, which names
    /// what is wrong), and kept when it is a KMS call.
    fn candidate(&mut self, index: usize, text: &str) {
        match extract(text) {
            Some(record) => self.record(index, &record),
            None => self.parse_slowly(index, text),
        }
    }

    /// Record `index`, which mentions KMS and which the fast path left: parsed by serde_json.
    fn parse_slowly(&mut self, index: usize, text: &str) {
        match serde_json::from_str::<RawRecord>(text) {
            Ok(record) => self.record(index, &record),
            Err(e) => self.reject(RecordError {
                index,
                event_id: None,
                message: e.to_string(),
            }),
        }
    }

    /// Record `index`, parsed: a KMS call, normalised, or another service's record.
    fn record(&mut self, index: usize, record: &RawRecord) {
        if record.event_source.as_deref() != Some(KMS_EVENT_SOURCE) {
            self.stats.non_kms_records += 1;
            return;
        }
        self.stats.kms_records += 1;
        match normalise(record) {
            Ok(call) => self.calls.push(call),
            Err(e) => self.reject(RecordError {
                index,
                event_id: record.event_id.as_deref().map(str::to_owned),
                message: e.to_string(),
            }),
        }
    }

    fn reject(&mut self, e: RecordError) {
        self.stats.malformed_records += 1;
        if self.record_errors.len() < MAX_RECORD_ERRORS_KEPT {
            self.record_errors.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KMS: &str = r#"{"eventTime":"2026-03-02T00:12:03Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"us-east-1","eventID":"k1","userIdentity":{"type":"AWSService","invokedBy":"s3.amazonaws.com"}}"#;
    const S3: &str = r#"{"eventTime":"2026-03-02T00:12:03Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","eventID":"s1"}"#;
    /// Mentions KMS but is not a KMS call: must not be counted as one.
    const S3_SSE: &str = r#"{"eventSource":"s3.amazonaws.com","eventName":"PutObject","requestParameters":{"x-amz-server-side-encryption":"aws:kms","note":"kms.amazonaws.com"}}"#;

    fn limits() -> DecodeLimits {
        DecodeLimits::default()
    }

    /// The JSON of every log file of the sample logs (digests and others without records too).
    fn sample_files() -> Vec<Vec<u8>> {
        fn walk(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
            for entry in std::fs::read_dir(dir).expect("reading sample-logs") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.to_string_lossy().ends_with(".json.gz") {
                    let bytes = std::fs::read(&path).unwrap();
                    out.push(
                        super::super::decompress(&bytes, usize::MAX)
                            .unwrap()
                            .into_owned(),
                    );
                }
            }
        }
        let mut out = Vec::new();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        walk(&repo.join("sample-logs"), &mut out);
        out.sort();
        out
    }

    /// [`decode_text`], as [`decode_json`] answers for it; `None` when it leaves the file to
    /// [`decode_records`].
    fn one_pass(text: &str, limits: &DecodeLimits) -> Option<Result<DecodedObject, ObjectError>> {
        match decode_text(text, 7, limits) {
            Ok(out) => Some(Ok(out)),
            Err(Stop::Split(e)) => Some(Err(object_error(e))),
            Err(Stop::Redo) => None,
        }
    }

    fn next(rng: &mut u64, n: usize) -> usize {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        (*rng % n as u64) as usize
    }

    /// The one-pass decode answers exactly as the record-by-record one: on the sample logs, and
    /// on files made of their records mixed with broken records, values that are not objects,
    /// mentions of KMS outside `eventSource`, other keys, a duplicated `Records` key, too many
    /// records and truncated files.
    #[test]
    fn one_pass_answers_as_record_by_record() {
        let files = sample_files();
        let mut pieces: Vec<String> = Vec::new();
        for json in &files {
            let text = std::str::from_utf8(json).unwrap();
            assert_eq!(
                one_pass(text, &limits()),
                Some(decode_records(json, 7, &limits()))
            );
            if pieces.len() < 3000 {
                if let Ok(records) = split_records(json) {
                    pieces.extend(
                        records
                            .iter()
                            .map(|r| String::from_utf8(r.to_vec()).unwrap()),
                    );
                }
            }
        }
        pieces.extend(
            [
                KMS,
                S3,
                S3_SSE,
                r#""kms.amazonaws.com""#,
                r#"["kms.amazonaws.com", {"eventSource": "kms.amazonaws.com"}]"#,
                "7",
                "null",
                r#"{"eventSource":"kms\u002eamazonaws.com","eventName":"Decrypt"}"#,
                r#"{"eventSource":"kms.amazonaws.com","eventSource":"kms.amazonaws.com"}"#,
                r#"{"eventName":"Decrypt","eventSource":"kms.amazonaws.com"}"#,
            ]
            .map(String::from),
        );
        let kms = pieces
            .iter()
            .filter(|p| p.contains(KMS_EVENT_SOURCE))
            .count();
        assert!(
            kms > 500 && kms < pieces.len() - 500,
            "{kms} of {}",
            pieces.len()
        );
        const JUNK: [&str; 9] = ["{", "}", "[", "]", ",", ":", "\"", "\\", "é"];
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        // Files left to the record-by-record decode, broken files, and calls the one pass found.
        let (mut redone, mut broken, mut calls) = (0, 0, 0);
        for _ in 0..3000 {
            let mut records: Vec<String> = (0..next(&mut rng, 12))
                .map(|_| pieces[next(&mut rng, pieces.len())].clone())
                .collect();
            if !records.is_empty() && next(&mut rng, 3) == 0 {
                // One record broken: a piece of structure put in, or its text cut short.
                let r = next(&mut rng, records.len());
                let cuts: Vec<usize> = records[r].char_indices().map(|(i, _)| i).collect();
                let at = cuts[next(&mut rng, cuts.len())];
                if next(&mut rng, 2) == 0 {
                    records[r].insert_str(at, JUNK[next(&mut rng, JUNK.len())]);
                } else {
                    records[r].truncate(at);
                }
            }
            let list = format!("[{}]", records.join(","));
            let mut doc = match next(&mut rng, 6) {
                0 => format!(r#"{{"Records":{list},"Records":[{S3}]}}"#),
                1 => format!(r#"{{"Records":[{KMS}],"Records":{list}}}"#),
                2 => format!(r#" {{ "x" : [1,{{"y":"}}"}}] , "Records" : {list} , "z" : null }} "#),
                _ => format!(r#"{{"Records":{list}}}"#),
            };
            if next(&mut rng, 10) == 0 {
                let cuts: Vec<usize> = doc.char_indices().map(|(i, _)| i).collect();
                doc.truncate(cuts[next(&mut rng, cuts.len())]);
            }
            let limits = DecodeLimits {
                max_records_per_object: [
                    usize::MAX,
                    usize::MAX,
                    records.len(),
                    records.len().max(1) - 1,
                ][next(&mut rng, 4)],
                ..limits()
            };
            let slow = decode_records(doc.as_bytes(), 7, &limits);
            match one_pass(&doc, &limits) {
                Some(fast) => {
                    assert_eq!(fast, slow, "{doc}");
                    calls += fast.map_or(0, |o| o.calls.len());
                }
                None => redone += 1,
            }
            broken += usize::from(slow.is_err());
        }
        assert!(
            redone > 300 && broken > 300 && calls > 2000,
            "{redone} {broken} {calls}"
        );
    }

    #[test]
    fn keeps_kms_calls_and_counts_the_rest() {
        let json = format!(r#"{{"Records":[{S3},{KMS},{S3_SSE}]}}"#);
        let d = decode_object(json.as_bytes(), &limits()).unwrap();
        assert_eq!(d.calls.len(), 1);
        assert_eq!(&*d.calls[0].event_id, "k1");
        assert_eq!(
            d.stats,
            DecodeStats {
                compressed_bytes: json.len() as u64,
                decompressed_bytes: json.len() as u64,
                records: 3,
                kms_records: 1,
                non_kms_records: 2,
                malformed_records: 0
            }
        );
    }

    #[test]
    fn malformed_records_are_named_and_the_rest_kept() {
        let missing = KMS.replace(r#""eventID":"k1","#, "");
        let bad_time = KMS
            .replace("2026-03-02T00:12:03Z", "soon")
            .replace("k1", "k2");
        let wrong_type = KMS.replace(r#""eventName":"Decrypt""#, r#""eventName":7"#);
        let json = format!(r#"{{"Records":[{missing},{KMS},{bad_time},{wrong_type}]}}"#);
        let d = decode_object(json.as_bytes(), &limits()).unwrap();
        assert_eq!(d.calls.len(), 1);
        assert_eq!(d.stats.malformed_records, 3);
        let msgs: Vec<String> = d.record_errors.iter().map(ToString::to_string).collect();
        assert_eq!(msgs[0], "record 0: missing required field eventID");
        assert_eq!(
            msgs[1],
            "record 2 (eventID k2): invalid eventTime \"soon\" (expected RFC 3339, e.g. 2026-03-02T00:12:03Z)"
        );
        assert!(
            msgs[2].starts_with("record 3: invalid type: integer `7`"),
            "{}",
            msgs[2]
        );
    }

    #[test]
    fn whole_object_errors() {
        let cases: [(&[u8], &str); 5] = [
            (b"not json", "not_json"),
            (b"{\"Records\":[", "not_json"),
            (b"[1,2]", "not_json"),
            (br#"{"digestStartTime":"x","logFiles":[]}"#, "no_records"),
            (b"\x1f\x8b\x08\x00\x00\x00", "gzip_truncated"),
        ];
        for (bytes, kind) in cases {
            let err = decode_object(bytes, &limits()).unwrap_err();
            assert_eq!(err.kind(), kind, "{err}");
        }
        let two = format!(r#"{{"Records":[{S3},{S3}]}}"#);
        let err = decode_object(
            two.as_bytes(),
            &DecodeLimits {
                max_records_per_object: 1,
                ..limits()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 records exceed max_records_per_object (1)"
        );
    }

    fn gzip(json: &str) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(json.as_bytes()).unwrap();
        z.finish().unwrap()
    }

    /// A thread's kept buffer holds nothing of the last object: a large object, then a small one,
    /// then a broken one, then the small one again decode as they do with a fresh buffer.
    #[test]
    fn a_reused_buffer_decodes_as_a_fresh_one() {
        let big = format!(
            r#"{{"Records":[{}]}}"#,
            vec![KMS.replace("k1", "big"); 500].join(",")
        );
        let small = format!(r#"{{"Records":[{S3},{KMS}]}}"#);
        let broken = gzip(&small);
        let broken = &broken[..broken.len() - 9];
        for object in [gzip(&big), gzip(&small), broken.to_vec(), gzip(&small)] {
            let fresh = decode_object(&object, &limits());
            let reused = decode_object_reusing(&object, &limits());
            match (fresh, reused) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.stats, b.stats);
                    assert_eq!(a.calls, b.calls);
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("fresh {:?} against reused {:?}", a.is_ok(), b.is_ok()),
            }
        }
        let kept = JSON.take();
        assert!(
            kept.is_empty() && kept.capacity() >= big.len(),
            "{}",
            kept.capacity()
        );
    }
}

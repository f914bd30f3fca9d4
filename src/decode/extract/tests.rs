use std::io::Read;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::decode::normalise::KMS_EVENT_SOURCE;
use crate::decode::split_records;

fn serde(text: &str) -> Option<RawRecord<'_>> {
    serde_json::from_str(text).ok()
}

/// Every record of the sample logs that mentions KMS (as `decode_object` would parse them).
fn sample_records() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("reading sample-logs") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.to_string_lossy().ends_with(".json.gz")
                && !path.to_string_lossy().contains("Digest")
            {
                let mut json = Vec::new();
                flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap())
                    .read_to_end(&mut json)
                    .unwrap();
                for r in split_records(&json).expect("a sample log splits") {
                    let text = std::str::from_utf8(r).unwrap();
                    if text.contains(KMS_EVENT_SOURCE) {
                        out.push(text.to_owned());
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-logs"),
        &mut out,
    );
    out
}

/// The fast path parses nearly all of the sample logs' KMS records, each exactly as serde does.
#[test]
fn agrees_with_serde_on_the_sample_logs() {
    let records = sample_records();
    assert!(records.len() > 5000, "{} records", records.len());
    let mut fallbacks = 0;
    for text in &records {
        let slow = serde(text).expect("sample records are valid");
        match extract(text) {
            Some(fast) => assert_eq!(fast, slow, "{text}"),
            None => fallbacks += 1,
        }
    }
    // Those left to serde have escapes in a wanted string (key policies, error messages).
    assert!(
        fallbacks * 50 < records.len(),
        "{fallbacks} of {} left to serde",
        records.len()
    );
}

const FULL: &str = r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROA:web-1","arn":"arn:aws:sts::222222222222:assumed-role/web/web-1","accountId":"222222222222","invokedBy":"s3.amazonaws.com","userName":"u","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROA","arn":"arn:aws:iam::222222222222:role/web","accountId":"222222222222"},"attributes":{"creationDate":"2026-03-03T13:00:00Z","mfaAuthenticated":"false"}}},"eventTime":"2026-03-03T13:00:00Z","eventSource":"kms.amazonaws.com","eventName":"CreateGrant","awsRegion":"eu-west-1","sourceIPAddress":"10.1.3.7","userAgent":"aws-sdk \"js\" \u00e9 \/ \n","requestParameters":{"keyId":"k","aliasName":"alias/a","targetKeyId":"t","encryptionContext":{"aws:s3:arn":null,"aws:ebs:id":{"x":[1,-2.5e+3,true,false,null,"y"]},"SecretARN":"s"},"policy":"p","bypassPolicyLockoutSafetyCheck":true,"granteePrincipal":"g","operations":["Decrypt"],"n":0},"responseElements":{"keyMetadata":{"arn":"arn:aws:kms:eu-west-1:222222222222:key/1","x":[]}},"requestID":"r","eventID":"e","sharedEventID":"s","readOnly":false,"resources":[{"accountId":"222222222222","type":"AWS::KMS::Key","ARN":"arn:aws:kms:eu-west-1:222222222222:key/1"},{}],"eventType":"AwsApiCall","recipientAccountId":"222222222222","errorCode":null,"additionalEventData":{"a":[[[{}]]],"b":1E9,"c":0.5}}"#;

#[test]
fn every_field_and_value_kind_is_read_as_serde_reads_it() {
    let fast = extract(FULL).expect("the fast path takes it");
    assert_eq!(Some(&fast), serde(FULL).as_ref());
    let p = fast.request_parameters.as_ref().unwrap();
    let ctx = p.encryption_context.as_ref().unwrap();
    assert!(ctx.s3.is_none() && ctx.ebs.is_some() && ctx.secretsmanager.is_some());
    assert_eq!(p.bypass_policy_lockout_safety_check, Some(true));
    assert_eq!(fast.resources.as_ref().map(Vec::len), Some(2));
    let spaced =
        " {\n\t\"eventName\" : \"Decrypt\" ,\r\n \"resources\" : [ ] , \"x\" : [ 1 , { } ] } \n";
    assert_eq!(extract(spaced), serde(spaced));
    assert!(extract(spaced).is_some());
}

/// What the fast path leaves to serde: serde's answer (a value or an error) decides.
#[test]
fn gives_up_where_serde_must_decide() {
    let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(80), "]".repeat(80));
    let cases = [
        // an escape in a wanted string: serde unescapes it
        r#"{"eventName":"De\"crypt"}"#.to_owned(),
        // a duplicated wanted field, at the top and inside
        r#"{"eventName":"a","eventName":"b"}"#.to_owned(),
        r#"{"requestParameters":{"encryptionContext":{"SecretARN":1,"SecretARN":2}}}"#.to_owned(),
        // wrong types
        r#"{"eventName":7}"#.to_owned(),
        r#"{"resources":[null]}"#.to_owned(),
        r#"{"resources":{}}"#.to_owned(),
        r#"{"userIdentity":"x"}"#.to_owned(),
        r#"{"requestParameters":{"bypassPolicyLockoutSafetyCheck":1}}"#.to_owned(),
        // invalid JSON in a skipped value
        "{\"userAgent\":\"a\u{1}b\"}".to_owned(),
        r#"{"n":01}"#.to_owned(),
        r#"{"n":1.}"#.to_owned(),
        r#"{"n":-}"#.to_owned(),
        r#"{"n":tru}"#.to_owned(),
        r#"{"s":"\x"}"#.to_owned(),
        r#"{"s":"\u12g4"}"#.to_owned(),
        r#"{"s":"\u+123"}"#.to_owned(),
        r#"{"a":[1,]}"#.to_owned(),
        r#"{"a":1,}"#.to_owned(),
        r#"{"a":1}x"#.to_owned(),
        r#"{"a" 1}"#.to_owned(),
        // a surrogate escape, even a valid pair: left to serde
        r#"{"s":"\ud83d\ude00"}"#.to_owned(),
        // a key with an escape, a record that is not an object, deep nesting
        r#"{"event\u004eame":"Decrypt"}"#.to_owned(),
        r#"["kms.amazonaws.com"]"#.to_owned(),
        deep,
    ];
    for text in &cases {
        assert_eq!(extract(text), None, "{text}");
    }
    // Of those, serde takes these (so giving up was needed for the right answer):
    assert!(serde(&cases[0]).is_some() && serde(&cases[20]).is_some());
    assert!(serde(&cases[23]).is_some());
}

/// Characters that make or break JSON, to mutate records with.
const ALPHABET: &[char] = &[
    '"', '\\', '{', '}', '[', ']', ',', ':', ' ', 'n', 't', 'f', 'u', '0', '1', '-', '.', 'e', 'E',
    '+', '\u{1}', 'a', 'é',
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Whenever the fast path takes a mutated record, serde takes it too and reads the same.
    #[test]
    fn never_takes_what_serde_reads_otherwise(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, prop::sample::select(ALPHABET)), 1..4)
    ) {
        let mut text: Vec<char> = FULL.chars().collect();
        for (at, op, c) in edits {
            let at = at.index(text.len());
            match op {
                0 => text[at] = c,
                1 => text.insert(at, c),
                _ => { text.remove(at); }
            }
        }
        let text: String = text.into_iter().collect();
        if let Some(fast) = extract(&text) {
            prop_assert_eq!(Some(fast), serde(&text), "{}", text);
        }
    }
}

proptest! {
    /// Both scans stop where a plain byte-by-byte search does, from every starting point.
    #[test]
    fn string_scans_stop_at_the_first_quote_backslash_or_control(
        bytes in prop::collection::vec(prop::sample::select(vec![b'a', b'"', b'\\', 0x1f, b' ', 0x7f, 0x80, 0xff, 0]), 0..80)
    ) {
        for from in 0..=bytes.len() {
            let want = bytes[from..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .map(|k| from + k);
            prop_assert_eq!(string_stop(&bytes, from), want);
            prop_assert_eq!(swar_string_stop(&bytes, from), want);
        }
    }
}

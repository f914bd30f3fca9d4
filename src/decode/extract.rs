//! The fast path of record parsing: fills a [`RawRecord`] straight from the JSON bytes, or gives
//! up (`None`) on anything it is not sure of, and serde_json parses the record instead.
//!
//! Its contract is one-sided: whenever it returns a record, serde_json accepts the same text and
//! yields an equal record. So it must validate all it skips as strictly as serde_json does, and
//! it gives up, rather than guess, on escapes in a wanted string, a control character, a
//! duplicated wanted field, a wrong type, a surrogate `\u` escape, or nesting deeper than
//! [`MAX_DEPTH`]. Errors are never its business: serde_json names them. The test beside it
//! checks the contract on the sample logs and on mutated records.

use std::borrow::Cow;

use serde::de::IgnoredAny;

use super::record::{
    EncryptionContext, KeyMetadata, RawRecord, RequestParameters, Resource, ResponseElements,
    SessionContext, SessionIssuer, Str, UserIdentity,
};

/// Nesting beyond this is left to serde_json (whose own limit is 128).
const MAX_DEPTH: u32 = 64;

/// A position in one record's text. Every method returns `None` to give up.
struct Cur<'a> {
    s: &'a str,
    i: usize,
    depth: u32,
}

/// `None` when `bit` was already seen: serde rejects a duplicated field.
fn once(seen: &mut u32, bit: u32) -> Option<()> {
    let was = *seen;
    *seen |= 1 << bit;
    (was & (1 << bit) == 0).then_some(())
}

/// The index of the first `"`, `\` or control character at or after `j`: sixteen bytes at a time
/// with SSE2 (part of the x86_64 baseline), then eight at a time.
#[inline]
fn string_stop(b: &[u8], j: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86_64 baseline.
    let j = match unsafe { sse2_string_stop(b, j) } {
        Ok(found) => return Some(found),
        Err(rest) => rest,
    };
    swar_string_stop(b, j)
}

/// [`string_stop`] sixteen bytes at a time: the stop, or where fewer than sixteen bytes remain.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn sse2_string_stop(b: &[u8], mut j: usize) -> Result<usize, usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let below_space = _mm_set1_epi8(0x1f);
    while j + 16 <= b.len() {
        // SAFETY: `b[j..j + 16]` is in bounds (checked just above); the load is unaligned.
        let v = unsafe { _mm_loadu_si128(b.as_ptr().add(j).cast::<__m128i>()) };
        let hit = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            // A byte is at most 0x1f exactly when the smaller of it and 0x1f is itself.
            _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v),
        );
        let mask = _mm_movemask_epi8(hit);
        if mask != 0 {
            return Ok(j + mask.trailing_zeros() as usize);
        }
        j += 16;
    }
    Err(j)
}

/// [`string_stop`] eight bytes at a time.
fn swar_string_stop(b: &[u8], mut j: usize) -> Option<usize> {
    const LO: u64 = u64::from_le_bytes([1; 8]);
    const HI: u64 = LO << 7;
    while let Some(chunk) = b.get(j..j + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let q = w ^ (LO * u64::from(b'"'));
        let s = w ^ (LO * u64::from(b'\\'));
        // The lowest flagged byte of each term is exact (borrows only run upwards).
        let m = ((q.wrapping_sub(LO) & !q)
            | (s.wrapping_sub(LO) & !s)
            | (w.wrapping_sub(LO * 0x20) & !w))
            & HI;
        if m != 0 {
            return Some(j + (m.trailing_zeros() / 8) as usize);
        }
        j += 8;
    }
    b[j..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|k| j + k)
}

impl<'a> Cur<'a> {
    #[inline]
    fn b(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b().get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b()[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    /// At `"`: a string without escapes, borrowed.
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.i + 1;
        let end = string_stop(self.b(), start)?;
        if self.b()[end] != b'"' {
            return None;
        }
        self.i = end + 1;
        // `start` and `end` sit next to ASCII quotes, so on character boundaries.
        Some(&self.s[start..end])
    }

    /// At `"`: skips a string, checking its escapes as serde_json does.
    fn skip_string(&mut self) -> Option<()> {
        let b = self.b();
        let mut j = self.i + 1;
        loop {
            j = string_stop(b, j)?;
            match b[j] {
                b'"' => {
                    self.i = j + 1;
                    return Some(());
                }
                b'\\' => match *b.get(j + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => j += 2,
                    b'u' => {
                        let hex = b.get(j + 2..j + 6)?;
                        let hex = std::str::from_utf8(hex).ok()?;
                        let unit = u16::from_str_radix(hex, 16).ok()?;
                        // Not `+` or `-` (from_str_radix takes a sign), and no surrogates:
                        // whether serde_json takes those depends on what follows.
                        if !hex.bytes().all(|c| c.is_ascii_hexdigit())
                            || (0xD800..0xE000).contains(&unit)
                        {
                            return None;
                        }
                        j += 6;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    fn digits(&mut self) -> Option<()> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        (self.i > start).then_some(())
    }

    /// A number in JSON's grammar (its value is never wanted).
    fn skip_number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.digits()?;
        }
        Some(())
    }

    /// Skips any value, validating it.
    fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.members(|c, _| c.skip()),
            b'[' => self.elements(Cur::skip),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        self.i += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// At `{`: each member's key (without escapes) and value to `f`, which must consume it.
    fn members(&mut self, mut f: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.enter()?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.plain_string()?;
            self.ws();
            self.literal(b":")?;
            self.ws();
            f(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// At `[`: each element to `f`, which must consume it.
    fn elements(&mut self, mut f: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.enter()?;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            f(self)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b']' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `null` as `None`, or a string without escapes.
    #[inline]
    fn text(&mut self) -> Option<Str<'a>> {
        match self.peek()? {
            b'"' => Some(Some(Cow::Borrowed(self.plain_string()?))),
            b'n' => self.literal(b"null").map(|()| None),
            _ => None,
        }
    }

    fn boolean(&mut self) -> Option<Option<bool>> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            b'n' => self.literal(b"null").map(|()| None),
            _ => None,
        }
    }

    /// `null` as `None`, or a value of any kind (validated) as `Some`.
    fn present(&mut self) -> Option<Option<IgnoredAny>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        self.skip().map(|()| Some(IgnoredAny))
    }

    /// `null` as `None`, or an object whose members `field` stores in a `T`. Each wanted field
    /// has a bit (below 32); `field` returns it, or `None` after skipping an unwanted member.
    fn object<T: Default>(
        &mut self,
        mut field: impl FnMut(&mut Self, &mut T, &str) -> Option<Option<u32>>,
    ) -> Option<Option<T>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| None),
            b'{' => {
                let mut out = T::default();
                let mut seen = 0;
                self.members(|c, key| match field(c, &mut out, key)? {
                    Some(bit) => once(&mut seen, bit),
                    None => Some(()),
                })?;
                Some(Some(out))
            }
            _ => None,
        }
    }
}

/// Stores a member's value in the field its key names, or skips it; yields the field's bit.
/// Each arm is `"key" => target = parser`.
macro_rules! fields {
    ($c:ident, $key:ident; $($name:literal => $slot:expr, $parse:expr;)*) => {{
        let mut bit = 0u32;
        $(
            if $key == $name {
                $slot = $parse?;
                return Some(Some(bit));
            }
            bit += 1;
        )*
        let _ = bit;
        $c.skip().map(|()| None)
    }};
}

fn record<'a>(c: &mut Cur<'a>, r: &mut RawRecord<'a>, key: &str) -> Option<Option<u32>> {
    fields!(c, key;
        "eventSource" => r.event_source, c.text();
        "eventName" => r.event_name, c.text();
        "eventTime" => r.event_time, c.text();
        "eventID" => r.event_id, c.text();
        "sharedEventID" => r.shared_event_id, c.text();
        "awsRegion" => r.aws_region, c.text();
        "sourceIPAddress" => r.source_ip_address, c.text();
        "recipientAccountId" => r.recipient_account_id, c.text();
        "errorCode" => r.error_code, c.text();
        "userIdentity" => r.user_identity, c.object(user_identity);
        "requestParameters" => r.request_parameters, c.object(request_parameters);
        "responseElements" => r.response_elements, c.object(response_elements);
        "resources" => r.resources, resources(c);
    )
}

fn user_identity<'a>(c: &mut Cur<'a>, u: &mut UserIdentity<'a>, key: &str) -> Option<Option<u32>> {
    fields!(c, key;
        "type" => u.kind, c.text();
        "arn" => u.arn, c.text();
        "accountId" => u.account_id, c.text();
        "invokedBy" => u.invoked_by, c.text();
        "principalId" => u.principal_id, c.text();
        "userName" => u.user_name, c.text();
        "sessionContext" => u.session_context, c.object(session_context);
    )
}

fn session_context<'a>(
    c: &mut Cur<'a>,
    s: &mut SessionContext<'a>,
    key: &str,
) -> Option<Option<u32>> {
    fields!(c, key;
        "sessionIssuer" => s.session_issuer, c.object(session_issuer);
    )
}

fn session_issuer<'a>(
    c: &mut Cur<'a>,
    s: &mut SessionIssuer<'a>,
    key: &str,
) -> Option<Option<u32>> {
    fields!(c, key;
        "type" => s.kind, c.text();
        "arn" => s.arn, c.text();
    )
}

fn request_parameters<'a>(
    c: &mut Cur<'a>,
    p: &mut RequestParameters<'a>,
    key: &str,
) -> Option<Option<u32>> {
    fields!(c, key;
        "keyId" => p.key_id, c.text();
        "aliasName" => p.alias_name, c.text();
        "targetKeyId" => p.target_key_id, c.text();
        "encryptionContext" => p.encryption_context, c.object(encryption_context);
        "policy" => p.policy, c.text();
        "bypassPolicyLockoutSafetyCheck" => p.bypass_policy_lockout_safety_check, c.boolean();
        "granteePrincipal" => p.grantee_principal, c.text();
    )
}

fn encryption_context(
    c: &mut Cur<'_>,
    e: &mut EncryptionContext,
    key: &str,
) -> Option<Option<u32>> {
    fields!(c, key;
        "aws:s3:arn" => e.s3, c.present();
        "aws:ebs:id" => e.ebs, c.present();
        "PARAMETER_ARN" => e.ssm, c.present();
        "SecretARN" => e.secretsmanager, c.present();
        "aws:lambda:FunctionArn" => e.lambda, c.present();
        "aws:cloudtrail:arn" => e.cloudtrail, c.present();
        "aws:rds:db-id" => e.rds, c.present();
        "aws:dynamodb:tableName" => e.dynamodb, c.present();
        "aws:logs:arn" => e.logs, c.present();
        "aws:sqs:arn" => e.sqs, c.present();
        "aws:sns:topicArn" => e.sns, c.present();
    )
}

fn response_elements<'a>(
    c: &mut Cur<'a>,
    r: &mut ResponseElements<'a>,
    key: &str,
) -> Option<Option<u32>> {
    fields!(c, key;
        "keyMetadata" => r.key_metadata, c.object(key_metadata);
    )
}

fn key_metadata<'a>(c: &mut Cur<'a>, k: &mut KeyMetadata<'a>, key: &str) -> Option<Option<u32>> {
    fields!(c, key;
        "arn" => k.arn, c.text();
    )
}

fn resource<'a>(c: &mut Cur<'a>, r: &mut Resource<'a>, key: &str) -> Option<Option<u32>> {
    fields!(c, key;
        "type" => r.kind, c.text();
        "ARN" => r.arn, c.text();
    )
}

/// `null`, or an array of resource objects (each must be an object, as serde requires).
fn resources<'a>(c: &mut Cur<'a>) -> Option<Option<Vec<Resource<'a>>>> {
    match c.peek()? {
        b'n' => c.literal(b"null").map(|()| None),
        b'[' => {
            let mut out = Vec::new();
            c.elements(|c| {
                // `null` is not a `Resource`: only an object is.
                if c.peek()? != b'{' {
                    return None;
                }
                out.push(c.object(resource)??);
                Some(())
            })?;
            Some(Some(out))
        }
        _ => None,
    }
}

/// The record in `text` (one element of a log file's `Records`), or `None` to leave it to serde.
pub(super) fn extract(text: &str) -> Option<RawRecord<'_>> {
    let mut c = Cur {
        s: text,
        i: 0,
        depth: 0,
    };
    c.ws();
    let (r, end) = extract_at(text, c.i)?;
    c.i = end;
    c.ws();
    (c.i == text.len()).then_some(r)
}

/// The record that starts at `text[start]` (a `{`) and where it ends (the index after its `}`),
/// or `None` to leave it to serde: what follows the record is not looked at.
pub(super) fn extract_at(text: &str, start: usize) -> Option<(RawRecord<'_>, usize)> {
    let mut c = Cur {
        s: text,
        i: start,
        depth: 0,
    };
    if c.peek()? != b'{' {
        return None;
    }
    let r = c.object(record)??;
    Some((r, c.i))
}

#[cfg(test)]
mod tests;

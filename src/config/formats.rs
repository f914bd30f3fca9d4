//! What valid values look like: queue and endpoint URLs, regions, bucket names, listen addresses,
//! log formats. Each check returns the reason a value is invalid, for the caller to report.

use std::net::SocketAddr;

use super::LogFormat;
use crate::problem::suggest;

/// An http(s) URL with a host, and with a path when `need_path` (a queue URL ends with the queue).
pub(super) fn http_url(value: &str, example: &str, need_path: bool) -> Result<String, String> {
    let like = format!("expected an http(s) URL like {example}");
    let Some(rest) = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
    else {
        return Err(if value.starts_with("arn:") {
            format!("that is an ARN; {like}")
        } else {
            like
        });
    };
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("a URL has no spaces; {like}"));
    }
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(format!("no host; {like}"));
    }
    if need_path && path.trim_matches('/').is_empty() {
        return Err(format!("no queue in the path; {like}"));
    }
    Ok(value.to_string())
}

pub(super) fn socket_addr(value: &str) -> Result<SocketAddr, String> {
    value.parse().map_err(|_| {
        "expected IP:PORT, like 127.0.0.1:9464, or 0.0.0.0:9464 for every interface (host names \
         are not resolved)"
            .to_string()
    })
}

pub(super) fn log_format(value: &str) -> Result<LogFormat, String> {
    match value {
        "human" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        _ => Err(match suggest(value, &["human", "json"]) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => "expected \"human\" or \"json\"".to_string(),
        }),
    }
}

/// An AWS region code such as `us-east-1`.
pub(super) fn region(value: &str) -> Result<String, String> {
    let ok = value.starts_with(|c: char| c.is_ascii_lowercase())
        && value.contains('-')
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(value.to_string())
    } else {
        Err("expected a region code like us-east-1".to_string())
    }
}

/// Checks an S3 bucket name (general purpose buckets: 3 to 63 lowercase letters, digits, `.` and
/// `-`, starting and ending with a letter or digit, no `..`, not an IP address).
pub(super) fn bucket_name(name: &str) -> Result<(), &'static str> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if name.starts_with("s3://") || name.starts_with("arn:") {
        Err("give the bucket's name alone, like my-trail-bucket")
    } else if !(3..=63).contains(&name.len()) {
        Err("a bucket name is 3 to 63 characters long")
    } else if !name.chars().all(|c| alnum(c) || c == '.' || c == '-') {
        Err("a bucket name holds only lowercase letters, digits, \".\" and \"-\"")
    } else if !(name.starts_with(alnum) && name.ends_with(alnum)) {
        Err("a bucket name begins and ends with a letter or digit")
    } else if name.contains("..") {
        Err("a bucket name has no two adjacent periods")
    } else if name.parse::<std::net::Ipv4Addr>().is_ok() {
        Err("a bucket name is not an IP address")
    } else {
        Ok(())
    }
}

/// "an integer", "an array", ...: a value's type for messages.
pub(super) fn a_value_type(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a datetime",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// An http(s) URL to deliver alerts to ([`http_url`], and one the HTTP client accepts).
pub(super) fn sink_url(value: &str, example: &str) -> Result<String, String> {
    let url = http_url(value, example, false)?;
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.authority().is_some_and(|a| a.as_str().contains('@')) => Err(
            "credentials in the URL are not supported; use token_env for a bearer token"
                .to_string(),
        ),
        Ok(_) => Ok(url),
        Err(e) => Err(format!("{e}; expected an http(s) URL like {example}")),
    }
}

/// The name of an environment variable: a letter or `_`, then letters, digits and `_`.
pub(super) fn env_var_name(value: &str) -> Result<(), &'static str> {
    let ok = value.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err("expected the name of an environment variable, like KMSWATCH_WEBHOOK_SECRET (the secret itself does not belong in the file)")
    }
}

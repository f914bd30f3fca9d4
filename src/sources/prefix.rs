//! The S3 prefix source (replay from the trail bucket): ListObjectsV2 with pagination, following the
//! trail layout level by level with delimiter listings so only the prefixes a [`Selection`] can
//! match are listed, and day folders read one delivery day at a time (bounded memory).

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_s3::Client;
use tokio::task::JoinSet;

use super::select::{Placement, Selection};
use super::{classify, ObjectRef};
use crate::retry::{with_retries, RetryPolicy};
use crate::sources::s3::{from_sdk, AwsError};

/// Levels above `AWSLogs/` followed with delimiter listings before listing a folder flat (a trail
/// prefix is seldom deeper).
const MAX_DEPTH_ABOVE_LAYOUT: usize = 4;

/// `s3://bucket/prefix` as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Prefix {
    pub bucket: String,
    /// A folder (ends with `/`, or empty for the whole bucket), or one object's key.
    pub prefix: String,
}

impl S3Prefix {
    /// Parses `s3://bucket`, `s3://bucket/prefix/` or `s3://bucket/key.json.gz`. A prefix that
    /// does not name a `.json`/`.json.gz` object is a folder.
    pub fn parse(url: &str) -> Result<S3Prefix, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url}: not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!(
                "{url}: no bucket name (expected s3://bucket/prefix/)"
            ));
        }
        let mut prefix = prefix.to_owned();
        if !prefix.is_empty() && !prefix.ends_with('/') && !Self::names_object(&prefix) {
            prefix.push('/');
        }
        Ok(S3Prefix {
            bucket: bucket.to_owned(),
            prefix,
        })
    }

    fn names_object(prefix: &str) -> bool {
        prefix.ends_with(".json.gz") || prefix.ends_with(".json")
    }
}

impl fmt::Display for S3Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// What listing counted.
#[derive(Debug, Default)]
pub struct Listing {
    /// Objects listed that the selection admits.
    pub files_found: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    /// Prefixes that could not be listed (`s3://bucket/prefix`), with the error.
    pub errors: Vec<(String, AwsError)>,
    /// ListObjectsV2 requests made (pages included).
    pub requests: u64,
    /// Folders not listed because nothing selected can be in them.
    pub pruned: u64,
    /// Objects listed, admitted or not.
    pub objects_listed: u64,
}

impl Listing {
    pub fn add(&mut self, o: Listing) {
        self.files_found += o.files_found;
        for (k, v) in o.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
        self.errors.extend(o.errors);
        self.requests += o.requests;
        self.pruned += o.pruned;
        self.objects_listed += o.objects_listed;
    }
}

/// The folders under some prefixes, found by following the layout: day folders by delivery day,
/// to be listed a day at a time, and the objects of every other folder, listed already.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Day folders (bucket, prefix) by delivery day (days since the epoch).
    pub days: BTreeMap<i64, Vec<(String, String)>>,
    /// Log objects outside day folders, with their sizes (unordered).
    pub loose: Vec<(ObjectRef, u64)>,
}

/// Lists S3 with bounded concurrency and retries.
#[derive(Debug, Clone)]
pub struct Lister {
    pub client: Client,
    pub policy: RetryPolicy,
    /// Listing requests in flight at once.
    pub concurrency: usize,
    /// Keys per ListObjectsV2 page (`MaxKeys`; S3's own limit and default is 1,000).
    pub page_size: i32,
}

/// One folder's listing: objects (key, size) and, with a delimiter, its subfolders.
struct Page {
    objects: Vec<(String, u64)>,
    folders: Vec<String>,
    requests: u64,
}

impl Lister {
    /// Follows the layout below each prefix: prunes folders the selection excludes, collects
    /// day folders by day, and lists every other folder whole. `on_listed` is told how many
    /// folders have been listed so far.
    pub async fn discover(
        &self,
        inputs: &[S3Prefix],
        sel: &Selection,
        listing: &mut Listing,
        on_listed: &dyn Fn(u64),
    ) -> Discovered {
        let mut folders_listed = 0u64;
        let mut found = Discovered::default();
        // (bucket, prefix, depth above the layout, listed with a delimiter)
        let mut queue: Vec<(String, String, usize, bool)> = Vec::new();
        let visit = |bucket: &str,
                     prefix: &str,
                     depth: usize,
                     queue: &mut Vec<(String, String, usize, bool)>,
                     found: &mut Discovered,
                     listing: &mut Listing| {
            match sel.place(prefix) {
                Placement::Outside => listing.pruned += 1,
                Placement::Flat { day: Some(day) } => found
                    .days
                    .entry(day)
                    .or_default()
                    .push((bucket.to_owned(), prefix.to_owned())),
                Placement::AboveLayout if depth >= MAX_DEPTH_ABOVE_LAYOUT => {
                    queue.push((bucket.to_owned(), prefix.to_owned(), depth, false))
                }
                Placement::AboveLayout => {
                    queue.push((bucket.to_owned(), prefix.to_owned(), depth + 1, true))
                }
                Placement::Structured => {
                    queue.push((bucket.to_owned(), prefix.to_owned(), depth, true))
                }
                Placement::Flat { day: None } => {
                    queue.push((bucket.to_owned(), prefix.to_owned(), depth, false))
                }
            }
        };
        for input in inputs {
            if S3Prefix::names_object(&input.prefix) {
                queue.push((input.bucket.clone(), input.prefix.clone(), 0, false));
            } else {
                visit(
                    &input.bucket,
                    &input.prefix,
                    0,
                    &mut queue,
                    &mut found,
                    listing,
                );
            }
        }
        let mut tasks = JoinSet::new();
        loop {
            while tasks.len() < self.concurrency.max(1) {
                let Some((bucket, prefix, depth, delimited)) = queue.pop() else {
                    break;
                };
                let this = self.clone();
                tasks.spawn(async move {
                    let page = this.list(&bucket, &prefix, delimited).await;
                    (bucket, prefix, depth, page)
                });
            }
            let Some(done) = tasks.join_next().await else {
                break;
            };
            let (bucket, prefix, depth, page) = done.expect("listing task panicked");
            folders_listed += 1;
            on_listed(folders_listed);
            let page = match page {
                Ok(p) => p,
                Err((requests, e)) => {
                    listing.requests += requests;
                    listing.errors.push((format!("s3://{bucket}/{prefix}"), e));
                    continue;
                }
            };
            listing.requests += page.requests;
            let exact = S3Prefix::names_object(&prefix).then_some(prefix.as_str());
            for (key, size) in page.objects {
                if exact.is_none_or(|k| k == key) {
                    admit(&bucket, key, size, sel, listing, &mut found.loose);
                }
            }
            for folder in page.folders {
                visit(&bucket, &folder, depth, &mut queue, &mut found, listing);
            }
        }
        found
    }

    /// Lists the day folders of one delivery day, returning the admitted log objects (unordered).
    pub async fn list_day(
        &self,
        folders: &[(String, String)],
        sel: &Selection,
        listing: &mut Listing,
    ) -> Vec<(ObjectRef, u64)> {
        let mut out = Vec::new();
        let mut tasks = JoinSet::new();
        let mut next = folders.iter();
        loop {
            while tasks.len() < self.concurrency.max(1) {
                let Some((bucket, prefix)) = next.next().cloned() else {
                    break;
                };
                let this = self.clone();
                tasks.spawn(async move {
                    let page = this.list(&bucket, &prefix, false).await;
                    (bucket, prefix, page)
                });
            }
            let Some(done) = tasks.join_next().await else {
                break;
            };
            match done.expect("listing task panicked") {
                (bucket, _, Ok(page)) => {
                    listing.requests += page.requests;
                    for (key, size) in page.objects {
                        admit(&bucket, key, size, sel, listing, &mut out);
                    }
                }
                (bucket, prefix, Err((requests, e))) => {
                    listing.requests += requests;
                    listing.errors.push((format!("s3://{bucket}/{prefix}"), e));
                }
            }
        }
        out
    }

    /// Every page of one listing; on failure, the requests made and the error.
    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimited: bool,
    ) -> Result<Page, (u64, AwsError)> {
        let mut page = Page {
            objects: Vec::new(),
            folders: Vec::new(),
            requests: 0,
        };
        let mut token: Option<String> = None;
        loop {
            let send = || {
                let mut req = self
                    .client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .max_keys(self.page_size);
                if delimited {
                    req = req.delimiter("/");
                }
                if let Some(t) = &token {
                    req = req.continuation_token(t);
                }
                req.send()
            };
            let mut tries = 0u64;
            let resp = with_retries(
                &self.policy,
                || {
                    tries += 1;
                    let fut = send();
                    async move { fut.await.map_err(from_sdk) }
                },
                |attempt, error| {
                    tracing::warn!(bucket, prefix, attempt, %error, "listing failed; retrying")
                },
            )
            .await;
            page.requests += tries;
            let resp = resp.map_err(|e| (page.requests, listing_error(e)))?;
            for o in resp.contents() {
                if let Some(key) = o.key() {
                    page.objects
                        .push((key.to_owned(), o.size().unwrap_or(0).max(0) as u64));
                }
            }
            for p in resp.common_prefixes() {
                if let Some(folder) = p.prefix() {
                    page.folders.push(folder.to_owned());
                }
            }
            match resp.next_continuation_token() {
                Some(t) if resp.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => return Ok(page),
            }
        }
    }
}

/// A 404 on a listing means the bucket does not exist, not a missing object.
fn listing_error(e: AwsError) -> AwsError {
    match e {
        AwsError::NotFound => AwsError::Other {
            code: "NoSuchBucket".into(),
            message: "the bucket does not exist".into(),
        },
        e => e,
    }
}

/// Counts a listed object and keeps it when it is a log file the selection admits.
fn admit(
    bucket: &str,
    key: String,
    size: u64,
    sel: &Selection,
    listing: &mut Listing,
    out: &mut Vec<(ObjectRef, u64)>,
) {
    listing.objects_listed += 1;
    // `folder/` placeholders (the console's "create folder") are folders, as on a disk.
    if key.ends_with('/') || !sel.admits_object(&key) {
        return;
    }
    listing.files_found += 1;
    match classify(&key, Some(size)) {
        Ok(()) => out.push((
            ObjectRef::S3 {
                bucket: bucket.to_owned(),
                key,
            },
            size,
        )),
        Err(reason) => *listing.skipped.entry(reason.as_str()).or_default() += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls() {
        let p = |u: &str| S3Prefix::parse(u).map(|p| (p.bucket, p.prefix));
        assert_eq!(p("s3://b"), Ok(("b".into(), "".into())));
        assert_eq!(p("s3://b/"), Ok(("b".into(), "".into())));
        assert_eq!(p("s3://b/AWSLogs"), Ok(("b".into(), "AWSLogs/".into())));
        assert_eq!(
            p("s3://b/AWSLogs/o-1/"),
            Ok(("b".into(), "AWSLogs/o-1/".into()))
        );
        assert_eq!(
            p("s3://b/x/f.json.gz"),
            Ok(("b".into(), "x/f.json.gz".into()))
        );
        assert!(p("s3:///x").unwrap_err().contains("no bucket"));
        assert!(p("/tmp/x").unwrap_err().contains("not an s3:// URL"));
    }
}

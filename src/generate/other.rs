//! Non-KMS records, the bulk of a real trail: S3 data events, STS, EC2, IAM, SSM, Secrets Manager
//! and CloudWatch Logs calls, by the same principals that use the keys.

use super::actors::{Caller, Channel, Principal, UA_BOTO};
use super::clock::{human, rfc3339, HOUR};
use super::json::{obj, J};
use super::record::{role_principal_id, Event, Identity, Resource};
use super::rng::{stable_upper, Rng};
use xxhash_rust::xxh3::xxh3_128;

const FALLBACK_IPS: &[&str] = &["10.30.0.12", "10.30.1.40", "10.30.2.77"];

/// Relative weights of the templates below, in order.
const WEIGHTS: [u32; 9] = [30, 12, 10, 15, 5, 10, 6, 6, 6];

/// Where a non-KMS call happens and who makes it.
pub(crate) struct Scene<'a> {
    pub time: i64,
    pub account: &'a str,
    pub region: &'a str,
    pub actor: &'a Caller,
    /// Buckets of the account, for S3 data events.
    pub buckets: &'a [&'static str],
}

/// The caller's identity and origin as if it called directly (non-KMS calls come from the
/// workload).
fn direct(rng: &mut Rng, scene: &Scene) -> (Identity, String, String) {
    let mut identity = scene.actor.identity(rng, scene.time);
    if let Identity::AssumedRole { invoked_by, .. } = &mut identity {
        *invoked_by = None;
    }
    let (ip, agent) = match &scene.actor.channel {
        Channel::Direct { ips, agent } => ((*rng.pick(ips)).to_string(), (*agent).to_string()),
        _ => ((*rng.pick(FALLBACK_IPS)).to_string(), UA_BOTO.to_string()),
    };
    (identity, ip, agent)
}

fn base(
    rng: &mut Rng,
    scene: &Scene,
    source: &'static str,
    name: &'static str,
    request: J,
) -> Event {
    let (identity, source_ip, user_agent) = direct(rng, scene);
    let service = source.trim_end_matches(".amazonaws.com");
    Event {
        time: scene.time,
        version: if rng.chance(0.85) { "1.09" } else { "1.08" },
        identity,
        source,
        name,
        region: scene.region.to_string(),
        source_ip,
        user_agent,
        error: None,
        request,
        response: J::Null,
        additional: None,
        request_id: rng.uuid(),
        event_id: rng.uuid(),
        read_only: true,
        resources: Vec::new(),
        management: true,
        recipient: scene.account.to_string(),
        shared_event_id: None,
        tls_host: Some(format!("{service}.{}.amazonaws.com", scene.region)),
    }
}

/// One non-KMS record, its kind drawn from a fixed mix.
pub(crate) fn event(rng: &mut Rng, scene: &Scene) -> Event {
    let role = match &scene.actor.who {
        Principal::Role { name, .. } => Some(*name),
        _ => None,
    };
    match rng.weighted(&WEIGHTS) {
        0 | 1 => {
            let put = rng.chance(0.3);
            s3_object(rng, scene, put)
        }
        2 => base(
            rng,
            scene,
            "ec2.amazonaws.com",
            "DescribeInstances",
            obj! { "instancesSet" => obj! {}, "filterSet" => obj! {} },
        ),
        3 if role.is_some() => assume_role(rng, scene, role.unwrap_or("worker")),
        4 if scene.region == "us-east-1" => {
            let mut e = base(rng, scene, "iam.amazonaws.com", "ListRoles", J::Null);
            e.tls_host = Some("iam.amazonaws.com".into());
            e
        }
        // AssumeRole for a user, ListRoles outside us-east-1 (IAM is global, logged there).
        3 | 4 => base(
            rng,
            scene,
            "ec2.amazonaws.com",
            "DescribeVolumes",
            obj! { "volumeSet" => obj! {}, "filterSet" => obj! {} },
        ),
        5 => {
            let name = *rng.pick(&[
                "/app/db-password",
                "/app/api-endpoint",
                "/shared/feature-flags",
            ]);
            let request = obj! { "name" => name, "withDecryption" => true };
            base(rng, scene, "ssm.amazonaws.com", "GetParameter", request)
        }
        6 => {
            let request = obj! { "secretId" => *rng.pick(&["app/api-key", "app/db-credentials"]) };
            base(
                rng,
                scene,
                "secretsmanager.amazonaws.com",
                "GetSecretValue",
                request,
            )
        }
        7 => base(
            rng,
            scene,
            "logs.amazonaws.com",
            "DescribeLogStreams",
            obj! {
                "logGroupName" => format!("/aws/lambda/{}", role.unwrap_or("worker")),
                "descending" => true,
                "orderBy" => "LastEventTime",
            },
        ),
        _ => base(
            rng,
            scene,
            "sts.amazonaws.com",
            "GetCallerIdentity",
            J::Null,
        ),
    }
}

/// An S3 `GetObject` or `PutObject` data event in one of the scene's buckets.
pub(crate) fn s3_object(rng: &mut Rng, scene: &Scene, put: bool) -> Event {
    let bucket = *rng.pick(scene.buckets);
    let key = format!(
        "{}/{}/part-{:05}.parquet",
        *rng.pick(&["raw", "curated", "uploads", "exports", "reports"]),
        rfc3339(scene.time)[..10].replace('-', "/"),
        rng.below(5000)
    );
    let request = obj! {
        "bucketName" => bucket,
        "Host" => format!("{bucket}.s3.{}.amazonaws.com", scene.region),
        "key" => key.clone(),
    };
    let mut e = base(
        rng,
        scene,
        "s3.amazonaws.com",
        if put { "PutObject" } else { "GetObject" },
        request,
    );
    let size = rng.range(2_000, 4_000_000);
    e.request_id = rng.upper(16);
    e.read_only = !put;
    e.management = false;
    e.tls_host = Some(format!("{bucket}.s3.{}.amazonaws.com", scene.region));
    if put {
        e.response = obj! {
            "x-amz-server-side-encryption" => "aws:kms",
            "x-amz-server-side-encryption-bucket-key-enabled" => "true",
        };
    }
    e.additional = Some(obj! {
        "SignatureVersion" => "SigV4",
        "CipherSuite" => "TLS_AES_128_GCM_SHA256",
        "bytesTransferredIn" => if put { size } else { 0 },
        "AuthenticationMethod" => "AuthHeader",
        "x-amz-id-2" => host_id(bucket, scene.time),
        "bytesTransferredOut" => if put { 0 } else { size },
    });
    e.resources = vec![
        Resource {
            account: None,
            kind: "AWS::S3::Object",
            arn: format!("arn:aws:s3:::{bucket}/{key}"),
        },
        Resource {
            account: Some(scene.account.to_string()),
            kind: "AWS::S3::Bucket",
            arn: format!("arn:aws:s3:::{bucket}"),
        },
    ];
    e
}

/// `x-amz-id-2`: identifies the S3 front end that served the request; one per bucket and minute
/// here (low entropy keeps the small sample files small).
fn host_id(bucket: &str, time: i64) -> String {
    let h = xxh3_128(format!("{bucket}/{}", time / 60).as_bytes());
    format!(
        "{}{:032x}{:012x}=",
        stable_upper("", &format!("{h:x}"), 11),
        h,
        h >> 80
    )
}

/// `AssumeRole` of the actor's role by a compute service, as happens before the role's calls.
fn assume_role(rng: &mut Rng, scene: &Scene, role: &str) -> Event {
    let service = *rng.pick(&[
        "ecs-tasks.amazonaws.com",
        "lambda.amazonaws.com",
        "ec2.amazonaws.com",
    ]);
    let session = if scene.actor.sessions.is_empty() {
        format!("{role}-session")
    } else {
        rng.pick(&scene.actor.sessions).clone()
    };
    let arn = format!("arn:aws:iam::{}:role/{role}", scene.account);
    let mut e = base(
        rng,
        scene,
        "sts.amazonaws.com",
        "AssumeRole",
        obj! {
            "roleArn" => arn.clone(),
            "roleSessionName" => session.clone(),
            "durationSeconds" => 3600i64,
        },
    );
    e.identity = Identity::AwsService {
        invoked_by: service.to_string(),
    };
    e.source_ip = service.to_string();
    e.user_agent = service.to_string();
    e.tls_host = None;
    e.response = obj! {
        "credentials" => obj! {
            "accessKeyId" => format!("ASIA{}", rng.upper(16)),
            "expiration" => human(scene.time + HOUR),
        },
        "assumedRoleUser" => obj! {
            "assumedRoleId" => format!("{}:{session}", role_principal_id(scene.account, role)),
            "arn" => format!("arn:aws:sts::{}:assumed-role/{role}/{session}", scene.account),
        },
    };
    e.resources = vec![Resource {
        account: Some(scene.account.to_string()),
        kind: "AWS::IAM::Role",
        arn,
    }];
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::actors::UA_JAVA;

    #[test]
    fn every_template_renders_valid_json_without_kms() {
        let actor = Caller::new(
            Principal::Role {
                account: "111111111111",
                name: "orders-api",
            },
            Channel::Direct {
                ips: &["10.0.0.1"],
                agent: UA_JAVA,
            },
            &["task-1"],
        );
        let mut rng = Rng::new(3);
        let mut names = std::collections::BTreeSet::new();
        for i in 0..400 {
            let scene = Scene {
                time: 1_767_225_600 + i,
                account: "111111111111",
                region: if i % 2 == 0 { "us-east-1" } else { "eu-west-1" },
                actor: &actor,
                buckets: &["prod-media"],
            };
            let e = event(&mut rng, &scene);
            assert!(!e.is_kms());
            let mut out = Vec::new();
            e.write_json(&mut out);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert!(v["eventID"].is_string());
            names.insert(e.name);
        }
        assert!(names.len() >= 9, "{names:?}");
    }
}

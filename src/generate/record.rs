//! One CloudTrail record ([`Event`]) and its serialisation, in the field order CloudTrail writes.

use super::clock::rfc3339;
use super::json::{write_str, ObjWriter, J};
use super::rng::stable_upper;

/// `userIdentity`, by type.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    AssumedRole {
        account: String,
        role: String,
        session: String,
        /// `invokedBy`: `AWS Internal` or a service DNS name when a service called on the role's
        /// behalf.
        invoked_by: Option<String>,
        /// When the session was issued (`sessionContext.attributes.creationDate`).
        issued: i64,
    },
    IamUser {
        account: String,
        user: String,
    },
    Root {
        account: String,
    },
    /// An AWS service acting as itself: only `invokedBy`.
    AwsService {
        invoked_by: String,
    },
    /// A caller in another account, as the key owner's copy of a cross-account call shows it.
    AwsAccount {
        account: String,
        principal_id: String,
    },
    /// AWS KMS acting on its own (`DeleteKey` at the end of a waiting period): no `type`, only
    /// `accountId` and `invokedBy: AWS Internal`; the record is an `AwsServiceEvent`.
    KmsItself {
        account: String,
    },
}

impl Identity {
    /// The stable principal the engine keys on: role ARN, user ARN, root ARN, service, or account.
    pub fn principal(&self) -> String {
        match self {
            Identity::AssumedRole { account, role, .. } => role_arn(account, role),
            Identity::IamUser { account, user } => format!("arn:aws:iam::{account}:user/{user}"),
            Identity::Root { account } => format!("arn:aws:iam::{account}:root"),
            Identity::AwsService { invoked_by } => invoked_by.clone(),
            Identity::AwsAccount { account, .. } => format!("aws-account:{account}"),
            Identity::KmsItself { .. } => "AWS Internal".to_string(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        let mut w = ObjWriter::new(out);
        match self {
            Identity::AssumedRole {
                account,
                role,
                session,
                invoked_by,
                issued,
            } => {
                let role_id = role_principal_id(account, role);
                w.str("type", "AssumedRole");
                w.str("principalId", &format!("{role_id}:{session}"));
                w.str(
                    "arn",
                    &format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
                );
                w.str("accountId", account);
                w.str(
                    "accessKeyId",
                    &stable_upper("ASIA", &format!("{account}/{role}/{session}/{issued}"), 16),
                );
                let out = w.key("sessionContext");
                let mut sc = ObjWriter::new(out);
                {
                    let out = sc.key("sessionIssuer");
                    let mut si = ObjWriter::new(out);
                    si.str("type", "Role");
                    si.str("principalId", &role_id);
                    si.str("arn", &role_arn(account, role));
                    si.str("accountId", account);
                    si.str("userName", role);
                    si.end();
                }
                {
                    let out = sc.key("attributes");
                    let mut at = ObjWriter::new(out);
                    at.str("creationDate", &rfc3339(*issued));
                    at.str("mfaAuthenticated", "false");
                    at.end();
                }
                sc.end();
                if let Some(by) = invoked_by {
                    w.str("invokedBy", by);
                }
            }
            Identity::IamUser { account, user } => {
                w.str("type", "IAMUser");
                w.str(
                    "principalId",
                    &stable_upper("AIDA", &format!("{account}/{user}"), 17),
                );
                w.str("arn", &format!("arn:aws:iam::{account}:user/{user}"));
                w.str("accountId", account);
                w.str(
                    "accessKeyId",
                    &stable_upper("AKIA", &format!("key/{account}/{user}"), 16),
                );
                w.str("userName", user);
            }
            Identity::Root { account } => {
                w.str("type", "Root");
                w.str("principalId", account);
                w.str("arn", &format!("arn:aws:iam::{account}:root"));
                w.str("accountId", account);
                w.str(
                    "accessKeyId",
                    &stable_upper("ASIA", &format!("root/{account}"), 16),
                );
            }
            Identity::AwsService { invoked_by } => {
                w.str("type", "AWSService");
                w.str("invokedBy", invoked_by);
            }
            Identity::AwsAccount {
                account,
                principal_id,
            } => {
                w.str("type", "AWSAccount");
                w.str("principalId", principal_id);
                w.str("accountId", account);
            }
            Identity::KmsItself { account } => {
                w.str("accountId", account);
                w.str("invokedBy", "AWS Internal");
            }
        }
        w.end();
    }
}

pub(crate) fn role_arn(account: &str, role: &str) -> String {
    format!("arn:aws:iam::{account}:role/{role}")
}

/// `AROA...`: the role's unique id, stable per role.
pub(crate) fn role_principal_id(account: &str, role: &str) -> String {
    stable_upper("AROA", &format!("{account}/{role}"), 17)
}

/// One entry of `resources`.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    /// `None` for S3 objects, which CloudTrail lists without an account.
    pub account: Option<String>,
    pub kind: &'static str,
    pub arn: String,
}

/// One CloudTrail record.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub time: i64,
    pub version: &'static str,
    pub identity: Identity,
    pub source: &'static str,
    pub name: &'static str,
    pub region: String,
    pub source_ip: String,
    pub user_agent: String,
    /// `errorCode` and `errorMessage`.
    pub error: Option<(&'static str, String)>,
    pub request: J,
    pub response: J,
    pub additional: Option<J>,
    pub request_id: String,
    pub event_id: String,
    pub read_only: bool,
    /// Empty: no `resources` field at all.
    pub resources: Vec<Resource>,
    /// `false` for data events (`eventCategory: Data`).
    pub management: bool,
    pub recipient: String,
    pub shared_event_id: Option<String>,
    /// `tlsDetails.clientProvidedHostHeader` for calls made over TLS from outside AWS.
    pub tls_host: Option<String>,
}

impl Event {
    pub fn is_kms(&self) -> bool {
        self.source == "kms.amazonaws.com"
    }

    /// Appends the compact JSON of the record.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut w = ObjWriter::new(out);
        w.str("eventVersion", self.version);
        self.identity.write(w.key("userIdentity"));
        w.str("eventTime", &rfc3339(self.time));
        w.str("eventSource", self.source);
        w.str("eventName", self.name);
        w.str("awsRegion", &self.region);
        w.str("sourceIPAddress", &self.source_ip);
        w.str("userAgent", &self.user_agent);
        if let Some((code, message)) = &self.error {
            w.str("errorCode", code);
            w.str("errorMessage", message);
        }
        w.j("requestParameters", &self.request);
        w.j("responseElements", &self.response);
        if let Some(extra) = &self.additional {
            w.j("additionalEventData", extra);
        }
        w.str("requestID", &self.request_id);
        w.str("eventID", &self.event_id);
        w.bool("readOnly", self.read_only);
        if !self.resources.is_empty() {
            let out = w.key("resources");
            out.push(b'[');
            for (i, r) in self.resources.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let mut rw = ObjWriter::new(out);
                if let Some(a) = &r.account {
                    rw.str("accountId", a);
                }
                rw.str("type", r.kind);
                rw.str("ARN", &r.arn);
                rw.end();
            }
            out.push(b']');
        }
        let event_type = match self.identity {
            Identity::KmsItself { .. } => "AwsServiceEvent",
            _ => "AwsApiCall",
        };
        w.str("eventType", event_type);
        w.bool("managementEvent", self.management);
        w.str("recipientAccountId", &self.recipient);
        if let Some(shared) = &self.shared_event_id {
            w.str("sharedEventID", shared);
        }
        w.str(
            "eventCategory",
            if self.management {
                "Management"
            } else {
                "Data"
            },
        );
        if let Some(host) = &self.tls_host {
            let out = w.key("tlsDetails");
            let mut tw = ObjWriter::new(out);
            tw.str("tlsVersion", "TLSv1.3");
            tw.str("cipherSuite", "TLS_AES_128_GCM_SHA256");
            tw.str("clientProvidedHostHeader", host);
            tw.end();
        }
        w.end();
    }
}

/// Appends `{"Records":[...]}` for the records, in the order given.
pub(crate) fn write_log(records: &[Event], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{");
    write_str(out, "Records");
    out.extend_from_slice(b":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        r.write_json(out);
    }
    out.extend_from_slice(b"]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_record_has_the_cloudtrail_shape() {
        let e = Event {
            time: 1_767_225_600,
            version: "1.09",
            identity: Identity::AssumedRole {
                account: "111111111111".into(),
                role: "app".into(),
                session: "s1".into(),
                invoked_by: Some("AWS Internal".into()),
                issued: 1_767_222_000,
            },
            source: "kms.amazonaws.com",
            name: "Decrypt",
            region: "us-east-1".into(),
            source_ip: "AWS Internal".into(),
            user_agent: "AWS Internal".into(),
            error: None,
            request: J::Null,
            response: J::Null,
            additional: None,
            request_id: "r".into(),
            event_id: "e".into(),
            read_only: true,
            resources: vec![Resource {
                account: Some("111111111111".into()),
                kind: "AWS::KMS::Key",
                arn: "arn:aws:kms:us-east-1:111111111111:key/k".into(),
            }],
            management: true,
            recipient: "111111111111".into(),
            shared_event_id: None,
            tls_host: None,
        };
        let mut out = Vec::new();
        write_log(std::slice::from_ref(&e), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let r = &v["Records"][0];
        assert_eq!(r["eventTime"], "2026-01-01T00:00:00Z");
        assert_eq!(
            r["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"],
            "arn:aws:iam::111111111111:role/app"
        );
        assert_eq!(
            r["userIdentity"]["arn"],
            "arn:aws:sts::111111111111:assumed-role/app/s1"
        );
        assert_eq!(r["resources"][0]["type"], "AWS::KMS::Key");
        assert_eq!(r["eventCategory"], "Management");
        assert_eq!(e.identity.principal(), "arn:aws:iam::111111111111:role/app");
    }
}

//! Admin calls for who may do what: SCRAM credentials (KIP-554) and ACLs, with Kafka's codes
//! for resource types, pattern types, operations and permissions.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Result, bail};
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::KafkaClient;
use super::auth::SaslMechanism;
use super::scram::salted_password;

/// One credential to create or replace. Debug leaves the password out.
pub struct ScramUpsert {
    pub user: String,
    pub mechanism: SaslMechanism,
    pub iterations: i32,
    pub password: String,
}

impl fmt::Debug for ScramUpsert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramUpsert")
            .field("user", &self.user)
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $($v:ident = $code:expr, $text:expr;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum $name { $($v),* }
        impl $name {
            pub fn code(self) -> i8 { match self { $($name::$v => $code),* } }
            pub fn from_code(c: i8) -> Option<Self> {
                match c { $($code => Some($name::$v),)* _ => None }
            }
            /// The inventory's (lowercase) name. Not every table is read from text or shown.
            #[allow(dead_code)]
            pub fn parse(s: &str) -> Option<Self> {
                match s.to_ascii_lowercase().as_str() { $($text => Some($name::$v),)* _ => None }
            }
            #[allow(dead_code)]
            pub fn name(self) -> &'static str { match self { $($name::$v => $text),* } }
        }
    };
}

codes!(
    /// Kafka's ResourceType.
    AclResourceType {
        Topic = 2, "topic";
        Group = 3, "group";
        Cluster = 4, "cluster";
        TransactionalId = 5, "transactional_id";
    }
);
codes!(
    /// Kafka's PatternType.
    AclPattern {
        Literal = 3, "literal";
        Prefixed = 4, "prefixed";
    }
);
codes!(
    /// Kafka's AclOperation.
    AclOperation {
        All = 2, "all";
        Read = 3, "read";
        Write = 4, "write";
        Create = 5, "create";
        Delete = 6, "delete";
        Alter = 7, "alter";
        Describe = 8, "describe";
        ClusterAction = 9, "cluster_action";
        DescribeConfigs = 10, "describe_configs";
        AlterConfigs = 11, "alter_configs";
        IdempotentWrite = 12, "idempotent_write";
    }
);
codes!(
    /// Kafka's AclPermissionType.
    AclPermission {
        Deny = 2, "deny";
        Allow = 3, "allow";
    }
);

/// One ACL: a principal may (or may not) do one operation on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: AclResourceType,
    pub resource_name: String,
    pub pattern: AclPattern,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} on {} {}{} from {}",
            self.principal,
            self.permission.name(),
            self.operation.name(),
            self.resource_type.name(),
            self.resource_name,
            if self.pattern == AclPattern::Prefixed {
                "*"
            } else {
                ""
            },
            self.host
        )
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

impl KafkaClient {
    /// Every user's SCRAM credentials: mechanism and iterations.
    pub async fn describe_user_scram_credentials(
        &mut self,
    ) -> Result<BTreeMap<String, Vec<(SaslMechanism, i32)>>> {
        let r = self
            .call(
                &DescribeUserScramCredentialsRequest::default(),
                self.timeout,
            )
            .await?;
        if r.error_code != 0 {
            return Err(self
                .api_error(
                    kafka_protocol::messages::ApiKey::DescribeUserScramCredentials,
                    "all users",
                    r.error_code,
                    r.error_message.as_ref(),
                )
                .into());
        }
        let mut out = BTreeMap::new();
        for u in r.results {
            // RESOURCE_NOT_FOUND for a user without credentials: none to list.
            if u.error_code != 0 {
                continue;
            }
            let creds = u
                .credential_infos
                .iter()
                .filter_map(|c| Some((SaslMechanism::from_scram_code(c.mechanism)?, c.iterations)))
                .collect();
            out.insert(u.user.to_string(), creds);
        }
        Ok(out)
    }

    /// Creates or replaces credentials (salted here: a fresh random salt each) and deletes
    /// others, in one request.
    pub async fn alter_user_scram_credentials(
        &mut self,
        upserts: &[ScramUpsert],
        deletions: &[(String, SaslMechanism)],
    ) -> Result<()> {
        let mut up = Vec::new();
        for u in upserts {
            let mut salt = [0u8; 32];
            aws_lc_rs::rand::fill(&mut salt)
                .map_err(|_| anyhow::anyhow!("no random bytes for a SCRAM salt"))?;
            let salted = salted_password(u.mechanism, &u.password, &salt, u.iterations as u32);
            up.push(
                ScramCredentialUpsertion::default()
                    .with_name(s(&u.user))
                    .with_mechanism(u.mechanism.scram_code())
                    .with_iterations(u.iterations)
                    .with_salt(Bytes::copy_from_slice(&salt))
                    .with_salted_password(Bytes::from(salted)),
            );
        }
        let del = deletions
            .iter()
            .map(|(user, m)| {
                ScramCredentialDeletion::default()
                    .with_name(s(user))
                    .with_mechanism(m.scram_code())
            })
            .collect();
        let req = AlterUserScramCredentialsRequest::default()
            .with_upsertions(up)
            .with_deletions(del);
        let mut r = self.call(&req, self.timeout).await?;
        // ZooKeeper mode: only the controller takes it (KIP-554); KRaft forwards it.
        let not_controller = kafka_protocol::error::ResponseError::NotController.code();
        if !r.results.is_empty() && r.results.iter().all(|x| x.error_code == not_controller) {
            let mut controller = self.connect_controller().await?;
            r = controller.call(&req, controller.timeout).await?;
        }
        let failed: Vec<String> = r
            .results
            .iter()
            .filter(|x| x.error_code != 0)
            .map(|x| {
                format!(
                    "{}: {}{}",
                    x.user,
                    super::code_name(x.error_code),
                    x.error_message
                        .as_ref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        if !failed.is_empty() {
            bail!(
                "Kafka {}: AlterUserScramCredentials failed for {}",
                self.addr,
                failed.join("; ")
            );
        }
        Ok(())
    }

    /// Every ACL of the cluster.
    pub async fn describe_acls(&mut self) -> Result<Vec<AclBinding>> {
        let r = self.call(&describe_all_acls(), self.timeout).await?;
        if r.error_code != 0 {
            return Err(self
                .api_error(
                    kafka_protocol::messages::ApiKey::DescribeAcls,
                    "all ACLs",
                    r.error_code,
                    r.error_message.as_ref(),
                )
                .into());
        }
        let mut out = Vec::new();
        for res in r.resources {
            let (Some(rt), Some(pt)) = (
                AclResourceType::from_code(res.resource_type),
                AclPattern::from_code(res.pattern_type),
            ) else {
                continue; // a kind clusterctl does not declare (delegation tokens, users)
            };
            for a in res.acls {
                let (Some(op), Some(perm)) = (
                    AclOperation::from_code(a.operation),
                    AclPermission::from_code(a.permission_type),
                ) else {
                    continue;
                };
                out.push(AclBinding {
                    resource_type: rt,
                    resource_name: res.resource_name.to_string(),
                    pattern: pt,
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: op,
                    permission: perm,
                });
            }
        }
        Ok(out)
    }

    pub async fn create_acls(&mut self, acls: &[AclBinding]) -> Result<()> {
        let req = CreateAclsRequest::default().with_creations(
            acls.iter()
                .map(|a| {
                    AclCreation::default()
                        .with_resource_type(a.resource_type.code())
                        .with_resource_name(s(&a.resource_name))
                        .with_resource_pattern_type(a.pattern.code())
                        .with_principal(s(&a.principal))
                        .with_host(s(&a.host))
                        .with_operation(a.operation.code())
                        .with_permission_type(a.permission.code())
                })
                .collect(),
        );
        let r = self.call(&req, self.timeout).await?;
        let failed: Vec<String> = acls
            .iter()
            .zip(&r.results)
            .filter(|(_, x)| x.error_code != 0)
            .map(|(a, x)| format!("{a}: {}", super::code_name(x.error_code)))
            .collect();
        if !failed.is_empty() {
            bail!(
                "Kafka {}: CreateAcls failed: {}",
                self.addr,
                failed.join("; ")
            );
        }
        Ok(())
    }

    pub async fn delete_acls(&mut self, acls: &[AclBinding]) -> Result<()> {
        let req = DeleteAclsRequest::default().with_filters(
            acls.iter()
                .map(|a| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(a.resource_type.code())
                        .with_resource_name_filter(Some(s(&a.resource_name)))
                        .with_pattern_type_filter(a.pattern.code())
                        .with_principal_filter(Some(s(&a.principal)))
                        .with_host_filter(Some(s(&a.host)))
                        .with_operation(a.operation.code())
                        .with_permission_type(a.permission.code())
                })
                .collect(),
        );
        let r = self.call(&req, self.timeout).await?;
        let failed: Vec<String> = acls
            .iter()
            .zip(&r.filter_results)
            .filter(|(_, x)| x.error_code != 0)
            .map(|(a, x)| format!("{a}: {}", super::code_name(x.error_code)))
            .collect();
        if !failed.is_empty() {
            bail!(
                "Kafka {}: DeleteAcls failed: {}",
                self.addr,
                failed.join("; ")
            );
        }
        Ok(())
    }
}

/// DescribeAcls for every ACL: ANY (1) of each kind. The name, principal and host filters
/// must be null: the crate's default is the empty string, which matches only ACLs with an
/// empty name, so every apply saw no ACLs and created them all again.
fn describe_all_acls() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describing_acls_asks_for_every_acl() {
        let r = describe_all_acls();
        assert_eq!(
            (r.resource_name_filter, r.principal_filter, r.host_filter),
            (None, None, None)
        );
        assert_eq!(
            (
                r.resource_type_filter,
                r.pattern_type_filter,
                r.operation,
                r.permission_type
            ),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn kafka_codes_and_names() {
        assert_eq!(AclOperation::parse("WRITE"), Some(AclOperation::Write));
        assert_eq!(AclOperation::Write.code(), 4);
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(AclOperation::from_code(8), Some(AclOperation::Describe));
        assert_eq!(AclOperation::parse("any"), None);
        assert_eq!(AclResourceType::Topic.code(), 2);
        assert_eq!(AclResourceType::TransactionalId.code(), 5);
        assert_eq!(AclPattern::Prefixed.code(), 4);
        assert_eq!(AclPermission::Allow.code(), 3);
        assert_eq!(SaslMechanism::ScramSha512.scram_code(), 2);
        let a = AclBinding {
            resource_type: AclResourceType::Group,
            resource_name: "app-".into(),
            pattern: AclPattern::Prefixed,
            principal: "User:app".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermission::Allow,
        };
        assert_eq!(a.to_string(), "User:app allow read on group app-* from *");
    }

    #[test]
    fn upserts_do_not_show_the_password() {
        let u = ScramUpsert {
            user: "app".into(),
            mechanism: SaslMechanism::ScramSha256,
            iterations: 4096,
            password: "hunter2".into(),
        };
        assert!(!format!("{u:?}").contains("hunter2"));
    }
}

//! Who may do what on a secured cluster: the declared SCRAM users and ACLs, converged over the
//! admin API like topics. The plan is one list of changes: `apply --dry-run` prints it and
//! `apply` makes it. Users and ACLs the inventory does not declare are reported and kept,
//! unless `--prune-access` says to delete them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::health::kafka::{AclBinding, KafkaClient, ListenerAuth, SaslLogin, ScramUpsert};
use crate::inventory::Inventory;
use crate::security::{Material, SCRAM_ITERATIONS, scram};

#[derive(Debug, Clone, PartialEq)]
pub enum AccessChange {
    /// A declared user without a credential for its mechanism.
    CreateUser {
        user: String,
    },
    /// A declared user whose password no longer logs in.
    UpdatePassword {
        user: String,
    },
    DeleteUser {
        user: String,
    },
    CreateAcl(AclBinding),
    DeleteAcl(AclBinding),
}

impl AccessChange {
    pub fn describe(&self) -> String {
        match self {
            AccessChange::CreateUser { user } => format!("create user {user}"),
            AccessChange::UpdatePassword { user } => format!("update the password of user {user}"),
            AccessChange::DeleteUser { user } => format!("delete user {user} (not declared)"),
            AccessChange::CreateAcl(a) => format!("create ACL {a}"),
            AccessChange::DeleteAcl(a) => format!("delete ACL {a} (not declared)"),
        }
    }
}

/// ZooKeeper mode, before the first broker starts: the admin and inter-broker users'
/// credentials written where Kafka reads them (`/config/users/NAME`), since brokers log in to
/// each other with them and no admin call can create a user before a broker runs. A user
/// already there is left as it is: the users step converges passwords once brokers run.
/// Returns the users created.
pub async fn bootstrap_in_zookeeper(inv: &Inventory, m: &Material) -> Result<Vec<String>> {
    let members = crate::engine::gates::zk_members(inv);
    let create = async |path: &str, data: &[u8]| -> Result<bool> {
        let mut errors = Vec::new();
        for (_, addr) in &members {
            match crate::health::znode::create(addr, path, data, ZK_TIMEOUT).await {
                Ok(created) => return Ok(created),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        anyhow::bail!("no ZooKeeper member created {path}: {}", errors.join("; "))
    };
    let mut created = Vec::new();
    for parent in ["/config", "/config/users"] {
        create(parent, b"").await?;
    }
    for u in crate::security::bootstrap_users(inv) {
        let znode = crate::security::zk_scram_znode(u.mechanism, m.password(&u.name)?)?;
        if create(&format!("/config/users/{}", u.name), znode.as_bytes()).await? {
            created.push(u.name.clone());
        }
    }
    Ok(created)
}

const ZK_TIMEOUT: Duration = Duration::from_secs(5);

/// What to change, and what is kept though undeclared (a note for the report).
#[derive(Debug, Clone, Default)]
pub struct AccessPlan {
    pub changes: Vec<AccessChange>,
    pub kept: Vec<String>,
}

/// Compares the cluster with the inventory. A declared user's password is checked by logging
/// in with it (SCRAM keeps only salted keys, so there is nothing else to compare).
pub async fn plan(
    inv: &Inventory,
    m: &Material,
    client: &mut KafkaClient,
    bootstrap: &[String],
    prune: bool,
) -> Result<AccessPlan> {
    let mut changes = Vec::new();
    let mut kept = Vec::new();
    let Some(sec) = &inv.security else {
        return Ok(AccessPlan { changes, kept });
    };
    if !sec.any_sasl() {
        return Ok(AccessPlan { changes, kept });
    }
    let existing = client.describe_user_scram_credentials().await?;
    let tls = m
        .listener_auth(inv)?
        .remove(&sec.client.port)
        .and_then(|a| a.tls);
    for u in &inv.users {
        let mech = scram(u.mechanism);
        let has = existing
            .get(&u.name)
            .is_some_and(|c| c.iter().any(|(m, _)| *m == mech));
        if !has {
            changes.push(AccessChange::CreateUser {
                user: u.name.clone(),
            });
            continue;
        }
        let auth = ListenerAuth {
            tls: tls.clone(),
            sasl: Some(SaslLogin {
                mechanism: mech,
                user: u.name.clone(),
                password: m.password(&u.name)?.to_string(),
            }),
        };
        if !logs_in(bootstrap, &auth).await? {
            changes.push(AccessChange::UpdatePassword {
                user: u.name.clone(),
            });
        }
    }
    let declared: BTreeSet<&str> = inv.users.iter().map(|u| u.name.as_str()).collect();
    for user in existing.keys().filter(|n| !declared.contains(n.as_str())) {
        match prune {
            true => changes.push(AccessChange::DeleteUser { user: user.clone() }),
            false => kept.push(format!(
                "user {user} is not declared (kept; --prune-access deletes it)"
            )),
        }
    }

    let want: BTreeSet<AclBinding> = inv.acls.iter().cloned().collect();
    let have: BTreeSet<AclBinding> = client.describe_acls().await?.into_iter().collect();
    changes.extend(
        want.difference(&have)
            .map(|a| AccessChange::CreateAcl(a.clone())),
    );
    for a in have.difference(&want) {
        match prune {
            true => changes.push(AccessChange::DeleteAcl(a.clone())),
            false => kept.push(format!(
                "ACL {a} is not declared (kept; --prune-access deletes it)"
            )),
        }
    }
    Ok(AccessPlan { changes, kept })
}

/// Whether `auth` logs in at any of `bootstrap`: false only when a broker refused the login;
/// no broker answering at all is an error.
async fn logs_in(bootstrap: &[String], auth: &ListenerAuth) -> Result<bool> {
    let mut last = None;
    for addr in bootstrap {
        match KafkaClient::connect_with(addr, Duration::from_secs(10), auth).await {
            Ok(_) => return Ok(true),
            Err(e) if crate::health::kafka::is_auth_failure(&e) => return Ok(false),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no broker to log in to")))
        .context("checking a user's password")
}

/// Makes the changes; returns a line for each.
pub async fn execute(
    inv: &Inventory,
    m: &Material,
    client: &mut KafkaClient,
    changes: &[AccessChange],
) -> Result<Vec<String>> {
    let mut upserts = Vec::new();
    let mut deletions = Vec::new();
    let mut create = Vec::new();
    let mut delete = Vec::new();
    let mechs: BTreeMap<&str, _> = inv
        .users
        .iter()
        .map(|u| (u.name.as_str(), scram(u.mechanism)))
        .collect();
    for c in changes {
        match c {
            AccessChange::CreateUser { user } | AccessChange::UpdatePassword { user } => upserts
                .push(ScramUpsert {
                    user: user.clone(),
                    mechanism: mechs[user.as_str()],
                    iterations: SCRAM_ITERATIONS as i32,
                    password: m.password(user)?.to_string(),
                }),
            AccessChange::DeleteUser { user } => {
                for (mech, _) in client
                    .describe_user_scram_credentials()
                    .await?
                    .remove(user)
                    .unwrap_or_default()
                {
                    deletions.push((user.clone(), mech));
                }
            }
            AccessChange::CreateAcl(a) => create.push(a.clone()),
            AccessChange::DeleteAcl(a) => delete.push(a.clone()),
        }
    }
    if !upserts.is_empty() || !deletions.is_empty() {
        client
            .alter_user_scram_credentials(&upserts, &deletions)
            .await
            .context("AlterUserScramCredentials")?;
    }
    if !create.is_empty() {
        client.create_acls(&create).await.context("CreateAcls")?;
    }
    if !delete.is_empty() {
        client.delete_acls(&delete).await.context("DeleteAcls")?;
    }
    Ok(changes.iter().map(AccessChange::describe).collect())
}

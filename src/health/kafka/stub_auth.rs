//! STUB (replaced by the real module on merge)
#![allow(dead_code, unused_variables)]
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Arc;
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SaslMechanism { Plain, ScramSha256, ScramSha512 }
#[derive(Clone)]
pub struct SaslLogin { pub mechanism: SaslMechanism, pub user: String, pub password: String }
#[derive(Clone, Default)]
pub struct ListenerAuth { pub tls: Option<Arc<rustls::ClientConfig>>, pub sasl: Option<SaslLogin> }
pub fn tls_config(ca_pems: &[String]) -> Result<Arc<rustls::ClientConfig>> { todo!() }
pub fn install_auth(by_port: BTreeMap<u16, ListenerAuth>) {}
pub fn salted_password(m: SaslMechanism, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> { todo!() }
pub fn is_auth_failure(e: &anyhow::Error) -> bool { todo!() }
pub struct ScramUpsert { pub user: String, pub mechanism: SaslMechanism, pub iterations: i32, pub password: String }
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AclResourceType { Topic, Group, Cluster, TransactionalId }
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AclPattern { Literal, Prefixed }
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AclPermission { Allow, Deny }
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AclOperation { All, Read, Write }
impl AclOperation { pub fn parse(s: &str) -> Option<Self> { todo!() } }
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclBinding { pub resource_type: AclResourceType, pub resource_name: String, pub pattern: AclPattern, pub principal: String, pub host: String, pub operation: AclOperation, pub permission: AclPermission }
impl std::fmt::Display for AclBinding { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{:?}", self) } }
impl super::KafkaClient {
    pub async fn connect_with(addr: &str, timeout: std::time::Duration, auth: &ListenerAuth) -> Result<Self> { todo!() }
    pub fn peer_certificate(&self) -> Option<Vec<u8>> { todo!() }
    pub async fn describe_user_scram_credentials(&mut self) -> Result<BTreeMap<String, Vec<(SaslMechanism, i32)>>> { todo!() }
    pub async fn alter_user_scram_credentials(&mut self, u: &[ScramUpsert], d: &[(String, SaslMechanism)]) -> Result<()> { todo!() }
    pub async fn describe_acls(&mut self) -> Result<Vec<AclBinding>> { todo!() }
    pub async fn create_acls(&mut self, a: &[AclBinding]) -> Result<()> { todo!() }
    pub async fn delete_acls(&mut self, a: &[AclBinding]) -> Result<()> { todo!() }
}

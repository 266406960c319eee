//! STUB (replaced by the real module on merge)
#![allow(dead_code, unused_variables)]
use anyhow::Result;
use std::path::Path;
use std::time::SystemTime;
pub const RENEW_WITHIN_DAYS: u64 = 30;
pub struct Ca { pub cert_pem: String }
pub struct HostCert { pub cert_pem: String, pub key_pem: String, pub not_after: SystemTime }
pub fn load_or_create_ca(dir: &Path, validity_days: u32, name: &str) -> Result<(Ca, bool)> { todo!() }
pub fn ensure_host_cert(dir: &Path, ca: &Ca, host: &str, sans: &[String], validity_days: u32, now: SystemTime) -> Result<(HostCert, Option<String>)> { todo!() }
pub fn not_after_der(der: &[u8]) -> Result<SystemTime> { todo!() }
pub fn not_after_pem(pem: &str) -> Result<SystemTime> { todo!() }
pub fn days_left(not_after: SystemTime, now: SystemTime) -> i64 { todo!() }
pub fn check_provided(cert_pem: &str, key_pem: &str, ca_pems: &[String], sans: &[String]) -> Result<()> { todo!() }

//! The client side of SCRAM (RFC 5802, with SHA-256 and SHA-512 as RFC 7677 and Kafka use
//! them): client-first, client-final with the proof, and the check of the server's signature,
//! so clusterctl knows it talks to a broker that holds the user's credential.

use anyhow::{Result, anyhow, bail, ensure};
use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::Engine;
use std::num::NonZeroU32;

use super::auth::SaslMechanism;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn algorithms(
    m: SaslMechanism,
) -> (
    pbkdf2::Algorithm,
    hmac::Algorithm,
    &'static digest::Algorithm,
) {
    match m {
        SaslMechanism::ScramSha512 => (
            pbkdf2::PBKDF2_HMAC_SHA512,
            hmac::HMAC_SHA512,
            &digest::SHA512,
        ),
        // PLAIN never reaches SCRAM; SHA-256 otherwise.
        _ => (
            pbkdf2::PBKDF2_HMAC_SHA256,
            hmac::HMAC_SHA256,
            &digest::SHA256,
        ),
    }
}

/// SaltedPassword := Hi(password, salt, i), the key a SCRAM credential is derived from.
pub fn salted_password(m: SaslMechanism, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let (p, _, d) = algorithms(m);
    let mut out = vec![0u8; d.output_len()];
    let n = NonZeroU32::new(iterations.max(1)).expect("at least 1");
    pbkdf2::derive(p, n, salt, password.as_bytes(), &mut out);
    out
}

/// What a server keeps of a credential (RFC 5802 3): StoredKey := H(HMAC(SaltedPassword,
/// "Client Key")) and ServerKey := HMAC(SaltedPassword, "Server Key").
pub fn server_keys(m: SaslMechanism, salted: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (_, _, d) = algorithms(m);
    let client_key = mac(m, salted, b"Client Key");
    let stored = digest::digest(d, &client_key).as_ref().to_vec();
    (stored, mac(m, salted, b"Server Key"))
}

fn mac(m: SaslMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    let (_, h, _) = algorithms(m);
    hmac::sign(&hmac::Key::new(h, key), data).as_ref().to_vec()
}

/// A SCRAM user name: `=` and `,` escaped (RFC 5802 5.1).
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// One exchange in progress.
pub struct Scram {
    mechanism: SaslMechanism,
    password: String,
    client_nonce: String,
    first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    pub fn new(mechanism: SaslMechanism, user: &str, password: &str) -> Result<Scram> {
        let mut raw = [0u8; 24];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| anyhow!("no random bytes for a nonce"))?;
        Ok(Self::with_nonce(
            mechanism,
            user,
            password,
            &B64.encode(raw),
        ))
    }

    fn with_nonce(mechanism: SaslMechanism, user: &str, password: &str, nonce: &str) -> Scram {
        Scram {
            mechanism,
            password: password.to_string(),
            client_nonce: nonce.to_string(),
            first_bare: format!("n={},r={nonce}", saslname(user)),
            server_signature: None,
        }
    }

    /// `n,,n=user,r=nonce`: no channel binding.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// The client-final message for the server-first one.
    pub fn client_final(&mut self, server_first: &str) -> Result<String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                Some(("e", v)) => bail!("the broker refused the login: {v}"),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            bail!("not a SCRAM server-first message");
        };
        ensure!(
            nonce.starts_with(&self.client_nonce) && nonce.len() > self.client_nonce.len(),
            "the broker's SCRAM nonce does not extend ours"
        );
        ensure!(
            iterations >= 4096,
            "SCRAM iterations {iterations} below 4096"
        );
        let salt = B64
            .decode(salt)
            .map_err(|_| anyhow!("the broker's SCRAM salt is not base64"))?;
        let m = self.mechanism;
        let salted = salted_password(m, &self.password, &salt, iterations);
        let client_key = mac(m, &salted, b"Client Key");
        let (_, _, d) = algorithms(m);
        let stored_key = digest::digest(d, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = mac(m, stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = mac(m, &salted, b"Server Key");
        self.server_signature = Some(mac(m, &server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final message: the broker proves it knows the credential too.
    pub fn verify_server_final(&self, server_final: &str) -> Result<()> {
        if let Some(e) = server_final.strip_prefix("e=") {
            bail!("the broker refused the login: {e}");
        }
        let v = server_final
            .strip_prefix("v=")
            .ok_or_else(|| anyhow!("not a SCRAM server-final message"))?;
        let got = B64
            .decode(v)
            .map_err(|_| anyhow!("the broker's SCRAM signature is not base64"))?;
        let want = self
            .server_signature
            .as_ref()
            .ok_or_else(|| anyhow!("server-final before client-final"))?;
        ensure!(
            &got == want,
            "the broker's SCRAM signature is wrong: it does not hold this user's credential"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3.
    #[test]
    fn rfc_7677_sha_256_exchange() {
        let mut s = Scram::with_nonce(
            SaslMechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(s.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            s.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        let e = s
            .verify_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(e.to_string().contains("signature is wrong"), "{e}");
    }

    /// RFC 7677's credential, the keys as Python's hashlib and hmac compute them.
    #[test]
    fn server_keys_of_the_rfc_7677_credential() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(SaslMechanism::ScramSha256, "pencil", &salt, 4096);
        let (stored, server) = server_keys(SaslMechanism::ScramSha256, &salted);
        assert_eq!(
            B64.encode(stored),
            "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        );
        assert_eq!(
            B64.encode(server),
            "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    /// PBKDF2-HMAC-SHA-512 as Python's hashlib computes it.
    #[test]
    fn sha_512_salted_password() {
        assert_eq!(
            B64.encode(salted_password(
                SaslMechanism::ScramSha512,
                "pencil",
                b"salt",
                4096
            )),
            "LP46HBUWYrHqSdE/WVZ0ocZmrdcN8V09AiVOmQWZOHgmHadAf9EcL+5LCjDfUVSxp1L4ahM4Dd1L3Zp8lY7HaQ=="
        );
    }

    #[test]
    fn sha_512_proofs_and_refusals() {
        let mut s = Scram::with_nonce(SaslMechanism::ScramSha512, "a=b,c", "pw", "abc");
        assert_eq!(s.client_first(), "n,,n=a=3Db=2Cc,r=abc");
        let fin = s.client_final("r=abcdef,s=c2FsdA==,i=4096").unwrap();
        let proof = B64.decode(fin.rsplit_once("p=").unwrap().1).unwrap();
        assert_eq!(proof.len(), 64);
        assert!(s.client_final("r=xyz,s=c2FsdA==,i=4096").is_err());
        assert!(s.client_final("r=abcd,s=c2FsdA==,i=10").is_err());
        let e = s.client_final("e=invalid-proof").unwrap_err().to_string();
        assert!(e.contains("refused the login: invalid-proof"), "{e}");
        assert_eq!(
            salted_password(SaslMechanism::ScramSha256, "pencil", b"x", 4096).len(),
            32
        );
    }
}

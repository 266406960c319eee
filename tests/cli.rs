//! The offline commands through the real binary: validate and render, exit codes and output.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_clusterctl");

const INVENTORY: &str = "\
hosts:
  k1: { address: 10.0.0.1 }
  k2: { address: 10.0.0.2 }
  k3: { address: 10.0.0.3 }
groups:
  controller: [k1, k2, k3]
  kafka: [k1, k2, k3]
kafka:
  version: 4.4.0
";

#[test]
fn validate_good_and_bad() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, INVENTORY).unwrap();
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok (3 hosts: 3 KRaft controller(s), 3 Kafka broker(s) 4.4.0)"),
        "{stdout}"
    );

    // $CLUSTERCTL_INVENTORY names the default inventory.
    let out = Command::new(BIN)
        .arg("validate")
        .env("CLUSTERCTL_INVENTORY", &good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, INVENTORY.replace("  controller: [k1, k2, k3]\n", "")).unwrap();
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:6:3: error: no ZooKeeper ensemble and no KRaft controllers"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.yaml:8:12: error: Kafka 4.4.0 has no ZooKeeper mode"),
        "{stderr}"
    );

    let out = Command::new(BIN)
        .arg("validate")
        .arg(dir.path().join("missing.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn render_writes_every_hosts_files() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new(BIN)
        .arg("render")
        .arg(&inv)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (host, id) in [("k1", 1), ("k2", 2), ("k3", 3)] {
        let sp = std::fs::read_to_string(out_dir.join(host).join("etc/kafka/server.properties"))
            .unwrap();
        assert!(sp.contains(&format!("node.id={id}\n")), "{sp}");
        assert!(sp.contains("process.roles=broker,controller\n"));
        assert!(out_dir.join(host).join("etc/init.d/kafka").is_file());
    }
    let systemd = dir.path().join("systemd");
    let out = Command::new(BIN)
        .arg("render")
        .arg(&inv)
        .args(["--init", "systemd", "--out"])
        .arg(&systemd)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        systemd
            .join("k1/etc/systemd/system/kafka.service")
            .is_file()
    );
}

/// `validate -v` shows each host's SSH settings as apply will use them, with what the
/// operator's OpenSSH config gave; a config that cannot be parsed is a warning.
#[test]
fn validate_verbose_shows_ssh_settings_from_the_ssh_config() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let cfg = dir.path().join("ssh_config");
    std::fs::write(
        &cfg,
        "Host k1\n    HostName k1.mgmt.example\n    User deploy\n    ProxyJump ops@bastion:2200\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["validate", "-v"])
        .arg(&inv)
        .env("CLUSTERCTL_SSH_CONFIG", &cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("  k1: ssh deploy@k1.mgmt.example:22, key from ssh-agent")
            && stdout
                .contains(", via ops@bastion:2200, health checks tunnelled; from ~/.ssh/config: User, HostName, ProxyJump"),
        "{stdout}"
    );
    assert!(stdout.contains("  k2: ssh root@10.0.0.2:22"), "{stdout}");

    std::fs::write(&cfg, "Host k1\n    Port notaport\n").unwrap();
    let out = Command::new(BIN)
        .args(["validate", "-v"])
        .arg(&inv)
        .env("CLUSTERCTL_SSH_CONFIG", &cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("its settings are not used"), "{all}");
    assert!(all.contains("  k1: ssh root@10.0.0.1:22"), "{all}");
}

/// Completion scripts for bash, zsh and fish name the commands; bash's parses.
#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["apply", "status", "restart", "dry-run"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("clusterctl.bash");
            std::fs::write(&f, &script).unwrap();
            let check = Command::new("bash").arg("-n").arg(&f).output().unwrap();
            assert!(check.status.success(), "bash -n: {check:?}");
        }
    }
}

/// `logs [INVENTORY] HOST SERVICE`: what it cannot read is refused before connecting.
#[test]
fn logs_refuses_what_it_cannot_read_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(&inv, INVENTORY).unwrap();
    let run = |args: &[&str], env_inventory: bool| {
        let mut c = Command::new(BIN);
        c.arg("logs").args(args).env("CLUSTERCTL_SSH_CONFIG", "");
        if env_inventory {
            c.env("CLUSTERCTL_INVENTORY", &inv);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let i = inv.to_str().unwrap();
    let (code, err) = run(&[i, "k9", "kafka"], false);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no host k9 in") && err.contains("hosts are k1, k2, k3"),
        "{err}"
    );
    // The inventory from the environment: HOST SERVICE alone.
    let (code, err) = run(&["k1", "zookeeper"], true);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("host k1 does not run zookeeper in this inventory"),
        "{err}"
    );
    let (code, err) = run(&["k1", "postgres"], true);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown service \"postgres\""), "{err}");
    let (code, _) = run(&["k1"], true);
    assert_eq!(code, Some(2), "one argument is a usage error");
}

const SECURE: &str = "\
security:
  listeners:
    client: { protocol: SASL_SSL }
    controller: { protocol: SASL_SSL }
  tls: { ca: managed }
  admin_user: admin
  inter_broker_user: broker
users:
  admin: { password_file: admin.password }
  broker: { password_env: CLUSTERCTL_TEST_BROKER_PW }
  app: { password_env: CLUSTERCTL_TEST_APP_PW }
";

/// `certs ca` makes the managed CA once and prints only its certificate; `client-config`
/// writes a 0600 file with the user's password and the CA beside it, and a password that
/// cannot be read is an error naming where it was looked for, writing nothing.
#[test]
fn certs_ca_and_client_config() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(&inv, format!("{INVENTORY}{SECURE}")).unwrap();
    let ca = Command::new(BIN)
        .args(["certs", "ca"])
        .arg(&inv)
        .output()
        .unwrap();
    assert_eq!(
        ca.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ca.stderr)
    );
    let pem = String::from_utf8_lossy(&ca.stdout).to_string();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----") && !pem.contains("PRIVATE"));
    let key = dir.path().join("pki/ca.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = Command::new(BIN)
        .args(["certs", "ca"])
        .arg(&inv)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), pem, "the same CA");

    let out = dir.path().join("app.properties");
    let cfg = |envs: &[(&str, &str)]| {
        let mut c = Command::new(BIN);
        c.arg("client-config")
            .arg(&inv)
            .args(["--user", "app", "--format", "java", "--out"])
            .arg(&out)
            .env_remove("CLUSTERCTL_TEST_APP_PW")
            .env_remove("CLUSTERCTL_TEST_BROKER_PW");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    std::fs::write(dir.path().join("admin.password"), "adm1n\n").unwrap();
    let o = cfg(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("$CLUSTERCTL_TEST_BROKER_PW is not set"),
        "{err}"
    );
    assert!(!out.exists());

    let o = cfg(&[
        ("CLUSTERCTL_TEST_APP_PW", "p\"w\\1"),
        ("CLUSTERCTL_TEST_BROKER_PW", "b"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("p\"w"));
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("security.protocol=SASL_SSL\n"), "{text}");
    assert!(text.contains("sasl.mechanism=SCRAM-SHA-512\n"), "{text}");
    // The JAAS quotes escaped, then the properties escaping of the backslashes.
    assert!(
        text.contains(r#"username="app" password="p\\"w\\\\1";"#),
        "{text}"
    );
    let ca_file = dir.path().join("app.properties.ca.pem");
    assert_eq!(std::fs::read_to_string(ca_file).unwrap(), pem);
}

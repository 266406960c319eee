// TEMPORARY end-to-end check, to be deleted.
use super::*;
use std::process::Command;

#[test]
#[ignore]
fn e2e_all() {
    let t = std::time::Instant::now();
    image("localhost/clusterctl-node:e2e-tmp").unwrap();
    eprintln!("E2E image took {:?}", t.elapsed());
    let dir = std::path::Path::new("/tmp/labtest2");
    std::fs::create_dir_all(dir).unwrap();
    let inv = dir.join("two.yaml");
    let t = std::time::Instant::now();
    up(2, &inv, "localhost/clusterctl-node:e2e-tmp").unwrap();
    eprintln!("E2E up took {:?}", t.elapsed());
    eprint!("{}", std::fs::read_to_string(&inv).unwrap());
    let st = state::State::load(&dir.join("two.lab")).unwrap().unwrap();
    for h in &st.hosts {
        let out = Command::new("ssh")
            .args(["-i", "/tmp/labtest2/two.lab/id_ed25519", "-o", "UserKnownHostsFile=/tmp/labtest2/two.lab/known_hosts",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "GlobalKnownHostsFile=/dev/null"])
            .arg(format!("root@{}", h.address))
            .arg("getent hosts n1 n2; apt-get update -qq && echo ok")
            .output().unwrap();
        eprintln!("{}: {} {}", h.name, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success());
    }
    down(&inv).unwrap();
    let ps = Command::new("podman").args(["ps", "-a", "--format", "{{.Names}}"]).output().unwrap();
    let nets = Command::new("podman").args(["network", "ls", "--format", "{{.Name}}"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ps.stdout).contains(&st.prefix));
    assert!(!String::from_utf8_lossy(&nets.stdout).contains(&st.prefix));
}

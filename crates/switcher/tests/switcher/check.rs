//! `switcher check`: a machine set up as the README says passes; each kind
//! of problem is named with its fix, and the check exits 5.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cutover_tests::Sandbox;
use nix::unistd::{Gid, Group, Uid, User};

use crate::common::{sandbox, switcher};

/// Lays out the root as the package's postinst does, with the drop folder
/// group-writable by a group that is not the owner's own, and an nginx
/// folder whose site serves current/frontend. Returns the nginx folder.
fn set_up(sb: &Sandbox) -> std::path::PathBuf {
    for dir in [
        "drop",
        "staging",
        "quarantine",
        "releases",
        "current",
        "shared",
        "state/logs",
    ] {
        fs::create_dir_all(sb.path(dir)).unwrap();
    }
    let drop = sb.path("drop");
    let other = ["nogroup", "users", "daemon"]
        .iter()
        .filter_map(|g| Group::from_name(g).ok().flatten())
        .find(|g| g.gid != Gid::effective())
        .expect("a group other than the current user's (nogroup on Debian)");
    nix::unistd::chown(&drop, None, Some(other.gid)).unwrap();
    fs::set_permissions(&drop, fs::Permissions::from_mode(0o3775)).unwrap();
    let nginx = sb.dir().join("nginx");
    fs::create_dir_all(nginx.join("sites-enabled")).unwrap();
    fs::write(
        nginx.join("sites-enabled/cutover"),
        format!(
            "server {{ root {}; }}\n",
            sb.path("current/frontend").display()
        ),
    )
    .unwrap();
    nginx
}

fn me() -> String {
    User::from_uid(Uid::effective()).unwrap().unwrap().name
}

#[test]
fn a_machine_set_up_as_documented_passes() {
    let sb = sandbox();
    let nginx = set_up(&sb);
    let run = switcher(
        &sb,
        &[
            "check",
            "--user",
            &me(),
            "--nginx-dir",
            nginx.to_str().unwrap(),
        ],
    );
    run.success()
        .stdout_has("no problems found")
        .stdout_has("ok    drop");
    assert!(!run.stdout().contains("FAIL"), "{run}");
}

#[test]
fn each_problem_is_named_with_its_fix() {
    let sb = sandbox();
    let nginx = set_up(&sb);
    // A state folder others may write, a drop folder its group may not, two
    // components on one port, a command that does not resolve, no nginx site.
    fs::set_permissions(sb.path("state"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(sb.path("drop"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(nginx.join("sites-enabled/cutover")).unwrap();
    let config = fs::read_to_string(&sb.config).unwrap();
    let config = config.replace(
        &format!("port = {}\n\n[switcher]", sb.frontend_port),
        &format!(
            "port = {}\nreload = \"no-such-reloader now\"\n\n[switcher]",
            sb.backend_port
        ),
    );
    assert!(
        config.contains("no-such-reloader"),
        "the test's config edit did not apply:\n{config}"
    );
    sb.write_config_text(&config);

    let run = switcher(
        &sb,
        &[
            "check",
            "--user",
            &me(),
            "--nginx-dir",
            nginx.to_str().unwrap(),
        ],
    );
    run.code_is(5)
        .stdout_has("FAIL  state")
        .stdout_has("fix: chmod go-w")
        .stdout_has("is not writable by its group")
        .stdout_has("both use port")
        .stdout_has("\"no-such-reloader\" is not an executable file")
        .stdout_has("no nginx site under")
        .stdout_has("5 problems found");
}

#[test]
fn a_missing_root_is_a_problem_not_a_crash() {
    let sb = sandbox();
    let run = switcher(
        &sb,
        &["check", "--user", &me(), "--nginx-dir", "/nonexistent"],
    );
    run.code_is(5)
        .stdout_has("FAIL  staging")
        .stdout_has("install -d");
    assert!(
        !Path::new(&sb.path("staging")).exists(),
        "check changes nothing\n{run}"
    );
}

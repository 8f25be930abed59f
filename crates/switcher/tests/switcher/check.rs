//! `switcher check`: a machine set up as the README says passes; each kind
//! of problem is named with its fix, and the check exits 5.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cutover_tests::bins::workspace_root;
use cutover_tests::{nginx, packages, Run, Sandbox};
use nix::unistd::{Gid, Group, Uid, User};

use crate::common::{sandbox, switcher};

/// The drop folder group-writable by a group that is not the owner's own,
/// as the package's postinst makes it.
fn set_up_drop(sb: &Sandbox) {
    let drop = sb.path("drop");
    fs::create_dir_all(&drop).unwrap();
    let other = ["nogroup", "users", "daemon"]
        .iter()
        .filter_map(|g| Group::from_name(g).ok().flatten())
        .find(|g| g.gid != Gid::effective())
        .expect("a group other than the current user's (nogroup on Debian)");
    nix::unistd::chown(&drop, None, Some(other.gid)).unwrap();
    fs::set_permissions(&drop, fs::Permissions::from_mode(0o3775)).unwrap();
}

/// Lays out the root as the package's postinst does, and an nginx whose
/// main config lives outside /etc/nginx and includes `switcher nginx-site`'s
/// rendering from a folder of its own. Returns the nginx main config.
fn set_up(sb: &Sandbox) -> PathBuf {
    for dir in [
        "staging",
        "quarantine",
        "releases",
        "current",
        "shared",
        "state/logs",
    ] {
        fs::create_dir_all(sb.path(dir)).unwrap();
    }
    set_up_drop(sb);
    nginx_with_site(sb, &nginx::site_for_config(&sb.config))
}

/// An nginx main config (outside /etc/nginx) that includes `site`.
fn nginx_with_site(sb: &Sandbox, site: &str) -> PathBuf {
    let dir = sb.dir().join("nginx");
    fs::create_dir_all(dir.join("sites")).unwrap();
    fs::write(dir.join("sites/cutover.conf"), site).unwrap();
    let d = dir.display();
    let conf = dir.join("nginx.conf");
    fs::write(
        &conf,
        format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 16; }}\n\
             http {{\naccess_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
             include {d}/sites/*.conf;\n}}\n"
        ),
    )
    .unwrap();
    conf
}

fn me() -> String {
    User::from_uid(Uid::effective()).unwrap().unwrap().name
}

/// `switcher check` as `--user me`, nginx from `conf`, systemd units from
/// `systemd` (an empty folder: no unit installed).
fn check(sb: &Sandbox, conf: &Path, systemd: &Path, user: &str) -> Run {
    switcher(
        sb,
        &[
            "check",
            "--user",
            user,
            "--nginx-conf",
            conf.to_str().unwrap(),
            "--systemd-dir",
            systemd.to_str().unwrap(),
        ],
    )
}

fn no_units(sb: &Sandbox) -> PathBuf {
    let dir = sb.dir().join("systemd");
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_machine_set_up_as_documented_passes() {
    nginx::binary();
    let sb = sandbox();
    let conf = set_up(&sb);
    let run = check(&sb, &conf, &no_units(&sb), &me());
    run.success()
        .stdout_has("no problems found")
        .stdout_has("ok    drop")
        .stdout_has("it is `switcher nginx-site` as is");
    assert!(!run.stdout().contains("FAIL"), "{run}");
}

#[test]
fn a_fresh_root_lacks_only_what_the_binaries_create() {
    nginx::binary();
    let sb = sandbox();
    // Only the root and the drop folder: what the binaries cannot make.
    set_up_drop(&sb);
    let conf = nginx_with_site(&sb, &nginx::site_for_config(&sb.config));
    let run = check(&sb, &conf, &no_units(&sb), &me());
    run.success()
        .stdout_has("no problems found")
        .stdout_has("is not there yet: the first collector or switcher run creates it")
        .stdout_has("switcher.json does not exist yet (the first run writes it)");
    assert!(
        !run.stdout().contains("switcher.json reads"),
        "a missing state file is not said to read\n{run}"
    );
    assert!(!run.stdout().contains("FAIL"), "{run}");
    assert!(!sb.path("staging").exists(), "check changes nothing\n{run}");
}

#[test]
fn folders_the_user_cannot_create_are_one_problem_with_its_fix() {
    let sb = sandbox();
    set_up_drop(&sb);
    // The root is the test user's, 0755: `nobody` cannot create in it.
    fs::set_permissions(&sb.root, fs::Permissions::from_mode(0o755)).unwrap();
    let run = check(&sb, Path::new("/nonexistent"), &no_units(&sb), "nobody");
    run.code_is(5)
        .stdout_has("state/logs are missing, and nobody cannot create them")
        .stdout_has("fix: install -d -o nobody -g nobody -m 0755");
    assert_eq!(
        run.stdout().matches("cannot create").count(),
        1,
        "one problem for the one folder in the way\n{run}"
    );
}

#[test]
fn each_problem_is_named_with_its_fix() {
    nginx::binary();
    let sb = sandbox();
    let conf = set_up(&sb);
    // A state folder others may write, a drop folder its group may not, two
    // components on one port, a command that does not resolve, no nginx site.
    fs::set_permissions(sb.path("state"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(sb.path("drop"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(sb.dir().join("nginx/sites/cutover.conf"), "").unwrap();
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

    let run = check(&sb, &conf, &no_units(&sb), &me());
    run.code_is(5)
        .stdout_has("FAIL  state")
        .stdout_has("fix: chmod go-w")
        .stdout_has("is not writable by its group")
        .stdout_has("both use port")
        .stdout_has("\"no-such-reloader\" is not an executable file")
        .stdout_has("no nginx site serves")
        .stdout_has("fix: switcher nginx-site >")
        .stdout_has("5 problems found");
}

#[test]
fn every_program_of_a_command_list_is_checked() {
    nginx::binary();
    let sb = sandbox();
    let conf = set_up(&sb);
    let config = fs::read_to_string(&sb.config).unwrap().replace(
        &format!("port = {}\n\n[switcher]", sb.frontend_port),
        &format!(
            "port = {}\nreload = \"cd /tmp && FOO=1 /nonexistent/lighttpd -f x 2>&1 | no-such-logger; true\"\n\n[switcher]",
            sb.frontend_port
        ),
    );
    sb.write_config_text(&config);
    let run = check(&sb, &conf, &no_units(&sb), &me());
    run.code_is(5)
        .stdout_has("components.frontend.reload: cd is a shell builtin")
        .stdout_has("\"/nonexistent/lighttpd\" is not an executable file")
        .stdout_has("\"no-such-logger\" is not an executable file")
        .stdout_has("fix: install it, or write its absolute path in components.frontend.reload")
        .stdout_has("2 problems found");
}

#[test]
fn a_sudo_command_names_the_line_sudoers_must_allow() {
    nginx::binary();
    let sb = sandbox();
    let conf = set_up(&sb);
    let config = fs::read_to_string(&sb.config).unwrap().replace(
        &format!("port = {}\n\n[switcher]", sb.frontend_port),
        &format!(
            "port = {}\nreload = \"sudo -n systemctl reload nginx\"\n\n[switcher]",
            sb.frontend_port
        ),
    );
    sb.write_config_text(&config);
    let run = check(&sb, &conf, &no_units(&sb), &me());
    let systemctl = ["/usr/bin/systemctl", "/bin/systemctl"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("systemctl");
    run.stdout_has(&format!("must allow exactly \"{systemctl} reload nginx\""))
        .stdout_has(&format!("sudo -l -U {} {systemctl} reload nginx", me()));
    // The template no longer claims a comparison that check does not make.
    let sudoers = fs::read_to_string(workspace_root().join("deploy/sudoers/cutover")).unwrap();
    assert!(!sudoers.contains("compares"), "{sudoers}");
}

#[test]
fn an_edited_site_is_checked_for_what_the_config_needs() {
    nginx::binary();
    let sb = sandbox();
    let conf = set_up(&sb);
    let site = nginx::site_for_config(&sb.config);
    let edited = site
        .replace(&format!("127.0.0.1:{}", sb.backend_port), "127.0.0.1:1")
        .replace("server_name _;", "server_name example.test;");
    nginx_with_site(&sb, &edited);
    let run = check(&sb, &conf, &no_units(&sb), &me());
    run.code_is(5)
        .stdout_has(&format!(
            "but it does not proxy to http://127.0.0.1:{} (component backend)",
            sb.backend_port
        ))
        .stdout_has("sites/cutover.conf (or edit it to match)");
    // Edits that keep what the config needs are fine.
    nginx_with_site(
        &sb,
        &site.replace("server_name _;", "server_name example.test;"),
    );
    check(&sb, &conf, &no_units(&sb), &me())
        .success()
        .stdout_has("edited: it differs from `switcher nginx-site`");
}

/// The shipped unit, in a folder of the test's own.
fn units_with_shipped_unit(sb: &Sandbox) -> PathBuf {
    let dir = no_units(sb);
    fs::copy(
        workspace_root().join("deploy/systemd/cutover.service"),
        dir.join("cutover.service"),
    )
    .unwrap();
    dir
}

#[test]
fn the_unit_must_let_the_service_write_root_and_drop() {
    nginx::binary();
    let sb = sandbox();
    let conf = set_up(&sb);
    let units = units_with_shipped_unit(&sb);
    // The sandbox's root is under /tmp: the shipped unit (ReadWritePaths=
    // /srv/cutover, PrivateTmp=yes) would not let a timer pass write it.
    let run = check(&sb, &conf, &units, &me());
    run.code_is(5)
        .stdout_has(&format!(
            "cutover.service cannot write {}",
            sb.root.display()
        ))
        .stdout_has("systemd-dropin > /etc/systemd/system/cutover.service.d/paths.conf");
    // With the drop-in that `switcher systemd-dropin` renders, it may.
    let dropin = switcher(&sb, &["systemd-dropin"]);
    dropin.success();
    fs::create_dir_all(units.join("cutover.service.d")).unwrap();
    fs::write(units.join("cutover.service.d/paths.conf"), dropin.stdout()).unwrap();
    check(&sb, &conf, &units, &me())
        .success()
        .stdout_has("cutover.service may write the root and the drop folder");
}

#[test]
fn the_dropin_follows_a_root_under_tmp_and_a_drop_under_home() {
    let sb = sandbox();
    let config = fs::read_to_string(&sb.config).unwrap().replacen(
        &format!("root = {:?}\n", sb.root.display().to_string()),
        "root = \"/tmp/cutover-elsewhere/root\"\ndrop = \"/home/ci/drop\"\n",
        1,
    );
    assert!(config.contains("/home/ci/drop"), "{config}");
    sb.write_config_text(&config);
    let run = switcher(&sb, &["systemd-dropin"]);
    run.success()
        .stdout_has("[Service]\nReadWritePaths=\nReadWritePaths=/tmp/cutover-elsewhere/root /home/ci/drop\n")
        .stdout_has("\nProtectHome=no\n")
        .stdout_has("\nPrivateTmp=no\n");

    // systemd itself reads the unit with the drop-in without a complaint.
    let analyze = packages::ensure("systemd-analyze", &["systemd"]);
    let units = units_with_shipped_unit(&sb);
    fs::create_dir_all(units.join("cutover.service.d")).unwrap();
    fs::write(units.join("cutover.service.d/paths.conf"), run.stdout()).unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(units.join("cutover.service"))
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

#[test]
fn a_blue_green_backend_needs_the_upstream_include_in_the_loaded_site() {
    nginx::binary();
    let sb = sandbox();
    let ports = [
        cutover_tests::net::free_port(),
        cutover_tests::net::free_port(),
    ];
    sb.write_config_text(&crate::bluegreen::config_text(&sb, true, ports, "true"));
    let conf = set_up(&sb);
    let upstream = sb.path("state/nginx/backend-upstream.conf");
    // Before any pass the file is missing: nginx could not load the site.
    check(&sb, &conf, &no_units(&sb), &me())
        .code_is(5)
        .stdout_has(&format!("{} is missing", upstream.display()));
    switcher(&sb, &[]).success();
    check(&sb, &conf, &no_units(&sb), &me())
        .success()
        .stdout_has(&format!("which routes backend to 127.0.0.1:{}", ports[0]));
    // A site that proxies elsewhere would leave traffic where it is.
    let site = nginx::site_for_config(&sb.config);
    let include = format!("include {};", upstream.display());
    assert!(site.contains(&include), "{site}");
    nginx_with_site(&sb, &site.replace(&include, ""));
    check(&sb, &conf, &no_units(&sb), &me())
        .code_is(5)
        .stdout_has(&format!("does not include {}", upstream.display()));
}

//! `switcher nginx-site`: the shipped site is the rendering of the example
//! config, and a rendering for another root and other ports works in real
//! nginx: /, /api/... and /deploy-status.

use std::fs;

use cutover_tests::bins::workspace_root;
use cutover_tests::nginx::{self, Nginx};

use crate::common::{demo, sandbox, stage, switcher, switcher_bin};

#[test]
fn the_shipped_site_is_the_rendering_of_the_example_config() {
    let root = workspace_root();
    let out = std::process::Command::new(switcher_bin())
        .arg("--config")
        .arg(root.join("deploy/cutover.toml"))
        .arg("nginx-site")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rendered = String::from_utf8(out.stdout).unwrap();
    let shipped = fs::read_to_string(root.join("deploy/nginx/cutover.conf")).unwrap();
    assert!(
        shipped == rendered,
        "deploy/nginx/cutover.conf is not `switcher --config deploy/cutover.toml nginx-site`; write it again with that command\n--- rendered\n{rendered}"
    );
}

#[test]
fn a_site_without_a_frontend_is_a_config_error() {
    let sb = sandbox();
    let text = fs::read_to_string(&sb.config)
        .unwrap()
        .replace("[components.frontend]", "[components.web]")
        .replace("\"frontend\"]", "\"web\"]");
    sb.write_config_text(&text);
    switcher(&sb, &["nginx-site"])
        .code_is(78)
        .stderr_has("nginx.frontend");
}

#[test]
fn the_rendered_site_serves_another_root_and_ports_through_real_nginx() {
    nginx::binary();
    let sb = sandbox();
    // The sandbox's root is a temp folder and its ports are free ones: no
    // default is left. nginx listens on the frontend's port, on loopback.
    let mut text = fs::read_to_string(&sb.config).unwrap();
    text.push_str(&format!(
        "\n[nginx]\nlisten = \"127.0.0.1:{}\"\n",
        sb.frontend_port
    ));
    sb.write_config_text(&text);
    let site = nginx::site_for_config(&sb.config);
    assert!(
        site.contains(&format!("root {}/current/frontend;", sb.root.display())),
        "{site}"
    );
    assert!(
        !site.contains("/srv/cutover") && !site.contains(":8080"),
        "{site}"
    );
    let web = Nginx::start(&site, sb.frontend_port);

    stage(&sb, &demo("full", "1.0.0", 1));
    let run = switcher(&sb, &[]);
    run.success();
    let index = web.get("/");
    assert!(
        index.status == 200 && index.body.contains("frontend 1.0.0"),
        "{index}\n{run}\n{}",
        web.error_log()
    );
    let api = web.get("/api/version");
    assert!(
        api.status == 200 && api.body.contains("backend 1.0.0"),
        "{api}\n{}",
        web.error_log()
    );
    let page = web.get("/deploy-status");
    assert!(
        page.status == 200
            && page
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
        "{page}\n{}",
        web.error_log()
    );
    let json = web.get("/deploy-status.json");
    assert!(
        json.status == 200 && json.body.contains("\"schema\""),
        "{json}"
    );
}

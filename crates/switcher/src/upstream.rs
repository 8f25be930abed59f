//! The nginx upstream of a blue-green component: the file cutover owns,
//! `state/nginx/<component>-upstream.conf`, which the rendered site
//! includes, and the check that nginx really routes to a slot.
//!
//! The file holds one line, `upstream cutover_<component> { server
//! 127.0.0.1:<port>; }`. It is replaced whole (temp file, fsync, rename), so
//! a reload at any instant reads the old port or the new, never half a file.
//! The site answers a request that carries `X-Cutover-Route: 1` with the
//! address nginx proxied it to (`X-Cutover-Upstream`), which is how the
//! route check knows which slot served, whatever the app answers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use deploy_root::{atomic, Layout};

/// The request header that asks the site to say where it proxied to.
pub const ROUTE_HEADER: &str = "X-Cutover-Route";

/// The response header that says it (nginx's `$upstream_addr`).
pub const UPSTREAM_HEADER: &str = "X-Cutover-Upstream";

/// How often the route check asks again.
const POLL: Duration = Duration::from_millis(100);

/// The upstream file of `component`.
pub fn path(layout: &Layout, component: &str) -> PathBuf {
    layout
        .state
        .join("nginx")
        .join(format!("{component}-upstream.conf"))
}

/// The upstream's name in nginx's config.
pub fn name(component: &str) -> String {
    format!("cutover_{component}")
}

/// What the file holds when nginx is to route to `port`.
pub fn text(component: &str, port: u16) -> String {
    format!(
        "# Written by the switcher (blue-green): the slot that serves. Do not edit.\nupstream {} {{ server 127.0.0.1:{port}; }}\n",
        name(component)
    )
}

/// The port the file routes to now, if it exists and reads as ours.
pub fn routed_port(layout: &Layout, component: &str) -> Option<u16> {
    let text = std::fs::read_to_string(path(layout, component)).ok()?;
    let after = text.split("server 127.0.0.1:").nth(1)?;
    after.split(';').next()?.trim().parse().ok()
}

/// Points the upstream at 127.0.0.1:`port` (durably: after a crash, the
/// file says where the last reload may have sent traffic).
pub fn write(layout: &Layout, component: &str, port: u16) -> anyhow::Result<()> {
    let path = path(layout, component);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating folder {}", dir.display()))?;
    }
    atomic::write(&path, text(component, port).as_bytes())?;
    tracing::info!("{component}: nginx upstream -> 127.0.0.1:{port}");
    Ok(())
}

/// Writes the file when it is missing, so that nginx can load the site
/// before the first deploy (an include of a missing file is an error).
pub fn ensure(layout: &Layout, component: &str, port: u16) -> anyhow::Result<()> {
    if path(layout, component).exists() {
        return Ok(());
    }
    write(layout, component, port)
}

/// The path part of an `http://host:port/path` URL (`/` when it has none).
pub fn url_path(url: &str) -> &str {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.find('/').map_or("/", |i| &rest[i..])
}

/// Asks nginx (at 127.0.0.1:`nginx_port`) for `path` until it answers 2xx
/// from 127.0.0.1:`want`, within `timeout`; or says what it saw last.
pub fn check_route(
    nginx_port: u16,
    path: &str,
    want: u16,
    timeout: Duration,
) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{nginx_port}{path}");
    let want_addr = format!("127.0.0.1:{want}");
    let deadline = Instant::now() + timeout;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    loop {
        let seen = match agent.get(&url).header(ROUTE_HEADER, "1").call() {
            Ok(resp) => {
                let code = resp.status().as_u16();
                let addr = resp
                    .headers()
                    .get(UPSTREAM_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                // nginx lists every address it tried: the last answered.
                let last = addr.rsplit(", ").next().unwrap_or("").to_string();
                if (200..300).contains(&code) && last == want_addr {
                    return Ok(());
                }
                if addr.is_empty() {
                    format!("{url} answered {code} without {UPSTREAM_HEADER} (is the site `switcher nginx-site`'s?)")
                } else {
                    format!("{url} answered {code} from {addr}")
                }
            }
            Err(e) => format!("{url} did not answer: {e}"),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "nginx did not route to {want_addr} within {} s (switcher.verify_timeout): {seen}",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_text() {
        assert_eq!(
            url_path("http://127.0.0.1:{port}/api/health"),
            "/api/health"
        );
        assert_eq!(url_path("http://127.0.0.1:80"), "/");
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout {
            root: dir.path().into(),
            drop: dir.path().join("drop"),
            staging: dir.path().join("staging"),
            quarantine: dir.path().join("quarantine"),
            releases: dir.path().join("releases"),
            current: dir.path().join("current"),
            shared: dir.path().join("shared"),
            state: dir.path().join("state"),
        };
        assert_eq!(routed_port(&layout, "api"), None);
        ensure(&layout, "api", 8081).unwrap();
        write(&layout, "api", 8082).unwrap();
        ensure(&layout, "api", 8081).unwrap();
        assert_eq!(routed_port(&layout, "api"), Some(8082));
        assert!(std::fs::read_to_string(path(&layout, "api"))
            .unwrap()
            .contains("upstream cutover_api { server 127.0.0.1:8082; }"));
    }
}

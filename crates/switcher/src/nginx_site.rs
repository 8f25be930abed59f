//! `switcher nginx-site`: the nginx site for this config, rendered from the
//! template deploy/nginx/cutover.conf.in (built into the binary).
//!
//! The package's postinst writes it to /etc/nginx/sites-available/cutover,
//! `switcher check` compares the site nginx loads with it, and the shipped
//! deploy/nginx/cutover.conf is its rendering of deploy/cutover.toml (a test
//! keeps them equal).
//!
//! Placeholders: `@LISTEN@`, `@ROOT@`, `@FRONTEND@` (the frontend
//! component's name: current/<name>), `@BACKEND@` (127.0.0.1:<the backend
//! component's port>, or `cutover_<name>`, the upstream of a blue-green
//! backend), `@BACKEND_NAME@`. Lines from `#@if backend` to `#@end` are kept
//! only when there is a backend component, from `#@if blue-green` to
//! `#@end` only when it is blue-green (blocks may nest).

use deploy_root::Config;

/// The template, as committed.
pub const TEMPLATE: &str = include_str!("../../../deploy/nginx/cutover.conf.in");

/// The line that marks a file the package may rewrite.
pub const GENERATED_MARK: &str = "# cutover-generated:";

/// The site for `config`, or why there cannot be one (the message names the
/// config key to change).
pub fn render(config: &Config) -> Result<String, String> {
    let Some((frontend, _)) = config.nginx_frontend() else {
        return Err(
            "the nginx site serves a frontend component from current/<name>, and the config has none named \"frontend\": set nginx.frontend"
                .into(),
        );
    };
    let listen = config
        .nginx_listen()
        .ok_or_else(|| "no nginx.listen and no frontend port".to_string())?;
    let root = config.root.to_str().ok_or_else(|| {
        format!(
            "root {:?} is not UTF-8: nginx's config cannot name it",
            config.root
        )
    })?;
    if let Some(c) = root
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || ";{}\"'$#\\".contains(*c))
    {
        return Err(format!(
            "root {root:?} holds {c:?}, which nginx would read as syntax: choose a root without it"
        ));
    }
    let backend = config.nginx_backend();
    let blue_green = backend.is_some_and(|(_, c)| c.is_blue_green());
    let mut out = String::with_capacity(TEMPLATE.len());
    // One entry per open block: whether its lines are kept.
    let mut blocks: Vec<bool> = Vec::new();
    for line in TEMPLATE.lines() {
        let keep = blocks.iter().all(|k| *k);
        match line.trim_start() {
            "#@if backend" => blocks.push(backend.is_some()),
            "#@if blue-green" => blocks.push(blue_green),
            "#@end" => {
                blocks.pop();
            }
            _ if keep => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    let (backend_name, backend_addr) = backend.map_or((String::new(), String::new()), |(n, c)| {
        let addr = if c.is_blue_green() {
            crate::upstream::name(n)
        } else {
            format!("127.0.0.1:{}", c.port)
        };
        (n.to_string(), addr)
    });
    Ok(out
        .replace("@LISTEN@", &listen)
        .replace("@ROOT@", root)
        .replace("@FRONTEND@", frontend)
        .replace("@BACKEND_NAME@", &backend_name)
        .replace("@BACKEND@", &backend_addr))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(Path::new("/etc/cutover/cutover.toml"), text)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    const BASE: &str = "root = \"/srv/x\"\n[kinds]\nfull = [\"web\", \"api\"]\n\
        [components.web]\nport = 8081\n[components.api]\nport = 9090\n";

    #[test]
    fn follows_the_config() {
        let site = render(&config(&format!(
            "{BASE}[nginx]\nfrontend = \"web\"\nbackend = \"api\"\nlisten = \"127.0.0.1:8081\"\n"
        )))
        .unwrap();
        assert!(site.contains("listen 127.0.0.1:8081;"), "{site}");
        assert!(site.contains("root /srv/x/current/web;"), "{site}");
        assert!(site.contains("proxy_pass http://127.0.0.1:9090;"), "{site}");
        assert!(
            site.contains("alias /srv/x/state/deploy-status.html;"),
            "{site}"
        );
        for placeholder in ["@LISTEN@", "@ROOT@", "@FRONTEND@", "@BACKEND", "#@"] {
            assert!(!site.contains(placeholder), "{placeholder} left in\n{site}");
        }
    }

    #[test]
    fn a_blue_green_backend_goes_through_its_upstream() {
        let text = BASE.replace("port = 9090\n", "switch = \"blue-green\"\nports = [9091, 9092]\nstart = \"s\"\nstop = \"t\"\nhealth_url = \"http://127.0.0.1:{port}/api/health\"\n");
        let site = render(&config(&format!(
            "{text}[nginx]\nfrontend = \"web\"\nbackend = \"api\"\nreload = \"nginx -s reload\"\n"
        )))
        .unwrap();
        assert!(
            site.contains("include /srv/x/state/nginx/api-upstream.conf;"),
            "{site}"
        );
        assert!(site.contains("proxy_pass http://cutover_api;"), "{site}");
        assert!(
            site.contains("X-Cutover-Upstream $cutover_upstream"),
            "{site}"
        );
        assert!(!site.contains("#@"), "{site}");
        let plain = render(&config(&format!(
            "{BASE}[nginx]\nfrontend = \"web\"\nbackend = \"api\"\n"
        )))
        .unwrap();
        assert!(!plain.contains("upstream"), "{plain}");
    }

    #[test]
    fn without_a_backend_there_is_no_api() {
        let site = render(&config(&format!("{BASE}[nginx]\nfrontend = \"web\"\n"))).unwrap();
        assert!(site.contains("listen 8081;"), "{site}");
        assert!(!site.contains("/api/"), "{site}");
        assert!(!site.contains("#@"), "{site}");
    }

    #[test]
    fn refuses_what_nginx_would_misread() {
        let e = render(&config(BASE)).unwrap_err();
        assert!(e.contains("nginx.frontend"), "{e}");
        let e = render(&config(&format!(
            "{}[nginx]\nfrontend = \"web\"\n",
            BASE.replace("/srv/x", "/srv/a b")
        )))
        .unwrap_err();
        assert!(e.contains("' '"), "{e}");
    }
}

//! The config file: TOML, checked key by key.
//!
//! The default path is `/etc/cutover/cutover.toml`; `--config PATH` and the
//! environment variable `CUTOVER_CONFIG` override it. Every error names the
//! file, the key and what was expected. Relative paths in the file (`root`,
//! `drop`) are relative to the folder that holds the file, so a sandbox can
//! be moved as a whole.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The default config path.
pub const DEFAULT_PATH: &str = "/etc/cutover/cutover.toml";
/// The environment variable that overrides the default path.
pub const ENV: &str = "CUTOVER_CONFIG";

/// A config that could not be read or is not valid.
#[derive(Debug)]
pub struct ConfigError {
    file: PathBuf,
    key: Option<String>,
    message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(
                f,
                "config file {}: key `{key}`: {}",
                self.file.display(),
                self.message
            ),
            None => write!(f, "config file {}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The whole configuration, checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The deploy root: drop/ staging/ quarantine/ releases/ current/ shared/ state/.
    pub root: PathBuf,
    /// The drop folder, when it is not root/drop (it may be another filesystem).
    pub drop: Option<PathBuf>,
    /// Which components each kind carries.
    pub kinds: BTreeMap<String, Vec<String>>,
    /// The components, by name.
    pub components: BTreeMap<String, Component>,
    /// `[collector]`.
    pub collector: CollectorConfig,
    /// `[switcher]`.
    pub switcher: SwitcherConfig,
    /// `[status]`.
    pub status: StatusConfig,
    /// `[notify]`: where word of deploys and failures goes (crate::notify_config).
    pub notify: crate::notify_config::NotifyConfig,
    /// `[nginx]`: the site `switcher nginx-site` renders.
    pub nginx: NginxConfig,
    /// `[store]`: the S3-compatible store artifacts also come from
    /// (crate::fleet_config); not set: the drop folder only.
    pub store: Option<crate::fleet_config::StoreConfig>,
    /// `[fleet]`: this VM's group on the store; needs `[store]`.
    pub fleet: Option<crate::fleet_config::FleetConfig>,
}

/// `[components.<name>]`: how to run one component.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// The TCP port it listens on (checked on 127.0.0.1). For a blue-green
    /// component, not set in the file: the blue slot's port (`ports[0]`).
    #[serde(default)]
    pub port: u16,
    /// How a new release takes over: `restart` (stop, flip, start) or
    /// `blue-green` (start on the idle slot, move nginx's traffic, drain,
    /// stop the old one; see the switcher's `bluegreen`).
    #[serde(default)]
    pub switch: SwitchMode,
    /// Blue-green: the two slots' ports, blue then green.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Blue-green: how long the old release keeps running after traffic
    /// moved, so that requests it still serves can finish.
    #[serde(default = "default_drain", deserialize_with = "duration")]
    pub drain: Duration,
    /// An HTTP URL that must answer 2xx when the component is healthy.
    #[serde(default)]
    pub health_url: Option<String>,
    /// Stops the running release.
    #[serde(default)]
    pub stop: Option<String>,
    /// Starts the release that current/<component> points to.
    #[serde(default)]
    pub start: Option<String>,
    /// Used instead of stop/start where a reload is enough (e.g. nginx).
    #[serde(default)]
    pub reload: Option<String>,
    /// Runs in the new release folder before anything running is touched.
    #[serde(default)]
    pub prepare: Option<String>,
    /// Files in the release replaced by links to shared/<component>/<file>.
    #[serde(default)]
    pub linked_files: Vec<String>,
    /// Folders in the release replaced by links to shared/<component>/<dir>.
    #[serde(default)]
    pub linked_dirs: Vec<String>,
}

/// How a component switches releases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchMode {
    /// Stop the old release, flip current/, start the new one.
    #[default]
    Restart,
    /// Start the new release beside the old one, then move traffic.
    BlueGreen,
}

fn default_drain() -> Duration {
    Duration::from_secs(2)
}

impl Component {
    /// Whether the component switches blue-green.
    pub fn is_blue_green(&self) -> bool {
        self.switch == SwitchMode::BlueGreen
    }

    /// The health URL for an instance on `port`: `{port}` (required in a
    /// blue-green component's URL) becomes the port.
    pub fn health_url_on(&self, port: u16) -> Option<String> {
        self.health_url
            .as_ref()
            .map(|u| u.replace("{port}", &port.to_string()))
    }
}

/// `[collector]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// How many staged artifacts to keep at most (those the switcher still
    /// needs are kept beyond this).
    pub staging_keep: usize,
    /// How many quarantined files to keep at most.
    pub quarantine_keep: usize,
    /// An upload without its marker for longer than this is reported stale.
    #[serde(deserialize_with = "duration")]
    pub stale_upload_after: Duration,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            staging_keep: 20,
            quarantine_keep: 50,
            stale_upload_after: Duration::from_secs(30 * 60),
        }
    }
}

/// `[switcher]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwitcherConfig {
    /// Only artifacts from these branches deploy by themselves; empty: any.
    pub branches: Vec<String>,
    /// Releases kept per component (never the running or previous good one).
    pub keep_releases: usize,
    /// How long a started release has to listen (and be healthy).
    #[serde(deserialize_with = "duration")]
    pub verify_timeout: Duration,
    /// The time limit of each stop, start, reload and prepare command.
    #[serde(deserialize_with = "duration")]
    pub command_timeout: Duration,
    /// The most an archive may unpack to, in bytes ("4 GiB" works too).
    #[serde(deserialize_with = "bytes")]
    pub max_unpacked_size: u64,
    /// The most entries an archive may hold.
    pub max_entries: u64,
    /// How far a build time may be ahead of this machine's clock (CI's
    /// clock runs a little fast) before the artifact is held as built in
    /// the future: deployed, it would block every later build.
    #[serde(deserialize_with = "duration")]
    pub max_clock_skew: Duration,
    /// A command log in state/logs/ larger than this is rotated by the next
    /// pass (copied to `<name>.1`, then truncated in place).
    #[serde(deserialize_with = "bytes")]
    pub max_log_size: u64,
}

impl Default for SwitcherConfig {
    fn default() -> Self {
        SwitcherConfig {
            branches: Vec::new(),
            keep_releases: 5,
            verify_timeout: Duration::from_secs(60),
            command_timeout: Duration::from_secs(300),
            max_unpacked_size: 8 << 30,
            max_entries: 1_000_000,
            max_clock_skew: Duration::from_secs(5 * 60),
            max_log_size: 10 << 20,
        }
    }
}

/// `[status]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// Last may differ from Running this long before the page calls it a problem.
    #[serde(deserialize_with = "duration")]
    pub out_of_sync_after: Duration,
    /// How often cron runs collector and switcher; twice this without a run
    /// is reported.
    #[serde(deserialize_with = "duration")]
    pub period: Duration,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            out_of_sync_after: Duration::from_secs(10 * 60),
            period: Duration::from_secs(60),
        }
    }
}

/// `[nginx]`: what the site that `switcher nginx-site` renders serves.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NginxConfig {
    /// What nginx listens on: a port (`80`) or `"ADDRESS:PORT"`; by default
    /// the frontend component's port (its port must be that one: Status and
    /// verify probe it).
    #[serde(deserialize_with = "listen")]
    pub listen: Option<String>,
    /// The component nginx serves from current/<name>; by default
    /// `frontend`.
    pub frontend: Option<String>,
    /// The component that /api/ is proxied to (127.0.0.1:<its port>); by
    /// default `backend` where there is one.
    pub backend: Option<String>,
    /// The command that makes nginx read its config again (`systemctl
    /// reload nginx`); needed by blue-green components, whose traffic moves
    /// by a rewritten upstream and a graceful reload.
    pub reload: Option<String>,
}

/// `listen`: a port number or text (`"127.0.0.1:8081"`).
fn listen<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Port(u64),
        Text(String),
    }
    match Raw::deserialize(d).map_err(|_| {
        serde::de::Error::custom("expected a port (80) or \"ADDRESS:PORT\" (\"127.0.0.1:8081\")")
    })? {
        Raw::Port(p) => Ok(Some(p.to_string())),
        Raw::Text(t) => Ok(Some(t)),
    }
}

/// The port of an nginx `listen` value: `80`, `127.0.0.1:80`, `[::1]:80`.
pub fn listen_port(listen: &str) -> Option<u16> {
    let port = listen.rsplit_once(':').map_or(listen, |(_, p)| p);
    port.parse().ok().filter(|p| *p != 0)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    root: PathBuf,
    #[serde(default)]
    drop: Option<PathBuf>,
    kinds: BTreeMap<String, Vec<String>>,
    components: BTreeMap<String, Component>,
    #[serde(default)]
    collector: CollectorConfig,
    #[serde(default)]
    switcher: SwitcherConfig,
    #[serde(default)]
    status: StatusConfig,
    #[serde(default)]
    notify: crate::notify_config::NotifyConfig,
    #[serde(default)]
    nginx: NginxConfig,
    #[serde(default)]
    store: Option<crate::fleet_config::StoreConfig>,
    #[serde(default)]
    fleet: Option<crate::fleet_config::FleetConfig>,
}

/// A duration: whole seconds (`60`) or humantime text (`"90s"`, `"10m"`).
pub(crate) fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "expected a duration: whole seconds (60) or text (\"90s\", \"10m\")",
        )
    })? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => humantime::parse_duration(&t).map_err(|e| {
            serde::de::Error::custom(format!(
                "expected a duration such as \"90s\" or \"10m\", found {t:?} ({e})"
            ))
        }),
    }
}

/// A size: bytes (`1048576`) or text with a unit (`"512 MiB"`, `"4GiB"`).
fn bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    let expected = "expected a size: bytes (1048576) or text with a unit (\"512 MiB\", \"4 GiB\")";
    match Raw::deserialize(d).map_err(|_| serde::de::Error::custom(expected))? {
        Raw::Bytes(b) => Ok(b),
        Raw::Text(t) => parse_size(&t)
            .ok_or_else(|| serde::de::Error::custom(format!("{expected}, found {t:?}"))),
    }
}

/// Parses `"512 MiB"`, `"4GiB"`, `"100 MB"`, `"1000"`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

impl Config {
    /// The path to read: `--config`, else `$CUTOVER_CONFIG`, else the default.
    pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
        if let Some(p) = flag {
            return p.to_path_buf();
        }
        match std::env::var_os(ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(DEFAULT_PATH),
        }
    }

    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            key: None,
            message: format!("cannot be read: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses and checks config text as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let err = |key: Option<String>, message: String| ConfigError {
            file: path.to_path_buf(),
            key,
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml's message already names the key and shows the line.
            // ...and may quote a notify target's URL, a secret.
            let text = crate::notify_config::redact_urls_in(e.to_string().trim_end());
            err(None, format!("not valid: {text}"))
        })?;
        // Relative to the file's folder, made absolute so that commands run
        // in other folders (and the status page) see the same paths.
        let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let absolutize = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let mut config = Config {
            path: path.to_path_buf(),
            root: absolutize(raw.root),
            drop: raw.drop.map(absolutize),
            kinds: raw.kinds,
            components: raw.components,
            collector: raw.collector,
            switcher: raw.switcher,
            status: raw.status,
            notify: raw.notify,
            nginx: raw.nginx,
            store: raw.store,
            fleet: raw.fleet,
        };
        if let Some(store) = &mut config.store {
            store.credentials_file = store.credentials_file.take().map(absolutize);
        }
        config
            .check()
            .map_err(|(key, message)| err(Some(key), message))?;
        // The rest of the code (Status, check) reads `port`: for a
        // blue-green component it is the blue slot's.
        for c in config.components.values_mut() {
            if c.is_blue_green() {
                c.port = c.ports[0];
            }
        }
        Ok(config)
    }

    /// The checks that types alone do not make.
    fn check(&self) -> Result<(), (String, String)> {
        if self.root.as_os_str().is_empty() {
            return Err(("root".into(), "expected a folder path, found \"\"".into()));
        }
        if self.components.is_empty() {
            return Err((
                "components".into(),
                "expected at least one [components.<name>] table".into(),
            ));
        }
        if self.kinds.is_empty() {
            return Err((
                "kinds".into(),
                "expected at least one kind, e.g. full = [\"backend\", \"frontend\"]".into(),
            ));
        }
        for (name, c) in &self.components {
            let key = |k: &str| format!("components.{name}.{k}");
            if !is_identifier(name) {
                return Err((
                    format!("components.{name}"),
                    "expected a component name of [a-z][a-z0-9-]*".into(),
                ));
            }
            if c.is_blue_green() {
                check_blue_green(name, c)?;
            } else if c.port == 0 {
                return Err((
                    key("port"),
                    "expected a port number from 1 to 65535, found 0 or nothing".into(),
                ));
            } else if !c.ports.is_empty() {
                return Err((
                    key("ports"),
                    "expected no ports: two ports are for switch = \"blue-green\" (this component restarts on `port`)".into(),
                ));
            } else if c
                .health_url
                .as_deref()
                .is_some_and(|u| u.contains("{port}"))
            {
                return Err((
                    key("health_url"),
                    "expected a URL without {port}: only a blue-green component's URL names its slot's port".into(),
                ));
            }
            match (&c.stop, &c.start) {
                (Some(_), None) => {
                    return Err((key("start"), "expected a start command beside stop".into()))
                }
                (None, Some(_)) => {
                    return Err((key("stop"), "expected a stop command beside start".into()))
                }
                _ => {}
            }
            for (k, cmd) in [
                ("stop", &c.stop),
                ("start", &c.start),
                ("reload", &c.reload),
                ("prepare", &c.prepare),
            ] {
                if cmd.as_deref().is_some_and(|s| s.trim().is_empty()) {
                    return Err((
                        key(k),
                        "expected a shell command, found an empty string".into(),
                    ));
                }
            }
            if let Some(url) = &c.health_url {
                if !url.starts_with("http://") {
                    return Err((
                        key("health_url"),
                        format!("expected an http:// URL, found {url:?}"),
                    ));
                }
            }
            for (k, paths) in [
                ("linked_files", &c.linked_files),
                ("linked_dirs", &c.linked_dirs),
            ] {
                for p in paths {
                    let path = Path::new(p);
                    let ok = !p.is_empty()
                        && path.is_relative()
                        && path
                            .components()
                            .all(|c| matches!(c, std::path::Component::Normal(_)));
                    if !ok {
                        return Err((
                            key(k),
                            format!(
                                "expected a relative path inside the release without '..', found {p:?}"
                            ),
                        ));
                    }
                }
            }
        }
        for (kind, components) in &self.kinds {
            if !is_identifier(kind) {
                return Err((
                    format!("kinds.{kind}"),
                    "expected a kind name of [a-z][a-z0-9-]*".into(),
                ));
            }
            if components.is_empty() {
                return Err((
                    format!("kinds.{kind}"),
                    "expected at least one component".into(),
                ));
            }
            for c in components {
                if !self.components.contains_key(c) {
                    let known: Vec<&str> = self.components.keys().map(String::as_str).collect();
                    return Err((
                        format!("kinds.{kind}"),
                        format!(
                            "expected components defined under [components], found {c:?} (known: {})",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        for b in &self.switcher.branches {
            if let Some(expected) = artifact_name::validate_branch(b) {
                return Err((
                    "switcher.branches".into(),
                    format!("expected {expected}, found {b:?}"),
                ));
            }
        }
        if self.switcher.keep_releases < 2 {
            return Err((
                "switcher.keep_releases".into(),
                format!(
                    "expected at least 2 (the running release and the previous good one), found {}",
                    self.switcher.keep_releases
                ),
            ));
        }
        if self.switcher.verify_timeout.is_zero() {
            return Err((
                "switcher.verify_timeout".into(),
                "expected more than 0 s".into(),
            ));
        }
        // A build ahead of the clock by more than a day is a wrong clock (or
        // a mistyped --time), not skew: a limit that large would let it
        // block every later build, which the key exists to prevent.
        if self.switcher.max_clock_skew > Duration::from_secs(24 * 60 * 60) {
            return Err((
                "switcher.max_clock_skew".into(),
                format!(
                    "expected at most 1 day (0 holds any build dated after the clock), found {}",
                    humantime::format_duration(self.switcher.max_clock_skew)
                ),
            ));
        }
        if self.switcher.max_log_size < 1024 {
            return Err((
                "switcher.max_log_size".into(),
                format!(
                    "expected at least 1 KiB (a smaller log would be rotated on every pass), found {} bytes",
                    self.switcher.max_log_size
                ),
            ));
        }
        if self.switcher.command_timeout.is_zero() {
            return Err((
                "switcher.command_timeout".into(),
                "expected more than 0 s".into(),
            ));
        }
        if self.status.period.is_zero() {
            return Err(("status.period".into(), "expected more than 0 s".into()));
        }
        self.notify.check()?;
        if let Some(store) = &self.store {
            store.check()?;
        }
        if let Some(fleet) = &self.fleet {
            if self.store.is_none() {
                return Err((
                    "fleet".into(),
                    "expected a [store] section beside [fleet]: the group shares that store".into(),
                ));
            }
            fleet.check()?;
        }
        self.check_nginx()?;
        self.check_blue_green_units()
    }

    /// `[nginx]`: the components it names exist, and nginx listens on the
    /// frontend's port (the one Status and verify probe).
    fn check_nginx(&self) -> Result<(), (String, String)> {
        for (key, name) in [
            ("nginx.frontend", &self.nginx.frontend),
            ("nginx.backend", &self.nginx.backend),
        ] {
            if let Some(name) = name {
                if !self.components.contains_key(name) {
                    let known: Vec<&str> = self.components.keys().map(String::as_str).collect();
                    return Err((
                        key.into(),
                        format!(
                            "expected a component defined under [components], found {name:?} (known: {})",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Some(listen) = &self.nginx.listen {
            let syntax = listen
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || ";{}\"'$#\\".contains(c));
            let Some(port) = listen_port(listen).filter(|_| !syntax) else {
                return Err((
                    "nginx.listen".into(),
                    format!("expected a port (80) or \"ADDRESS:PORT\" (\"127.0.0.1:8081\"), found {listen:?}"),
                ));
            };
            if let Some((name, c)) = self.nginx_frontend() {
                if c.port != port {
                    return Err((
                        "nginx.listen".into(),
                        format!(
                            "expected port {} (components.{name}.port, which Status and verify probe), found {listen:?}",
                            c.port
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// What blue-green needs beyond one component: nginx routes to it and
    /// can be reloaded, and no kind carries it with a component that must
    /// be stopped and started (it would not be zero-downtime, and the two
    /// ways of going back do not mix).
    fn check_blue_green_units(&self) -> Result<(), (String, String)> {
        for name in self
            .components
            .iter()
            .filter(|(_, c)| c.is_blue_green())
            .map(|(n, _)| n)
        {
            if self.nginx_backend().map(|(n, _)| n) != Some(name.as_str()) {
                return Err((
                    format!("components.{name}.switch"),
                    format!(
                        "expected the component nginx proxies /api/ to (nginx.backend) for \"blue-green\": nginx moves its traffic, and it proxies to {}",
                        self.nginx_backend().map_or("no component".to_string(), |(n, _)| format!("{n:?}"))
                    ),
                ));
            }
            if self
                .nginx
                .reload
                .as_deref()
                .map_or(true, |r| r.trim().is_empty())
            {
                return Err((
                    "nginx.reload".into(),
                    format!("expected the command that reloads nginx (\"systemctl reload nginx\"): components.{name} is blue-green, and its traffic moves by a graceful reload"),
                ));
            }
            for (kind, members) in &self.kinds {
                if !members.contains(name) {
                    continue;
                }
                if let Some(other) = members.iter().find(|m| {
                    self.components
                        .get(*m)
                        .is_some_and(|o| !o.is_blue_green() && o.start.is_some())
                }) {
                    return Err((
                        format!("kinds.{kind}"),
                        format!("expected the blue-green component {name} beside files-only or reload-only components, found {other:?}, which has start and stop: give it its own kind"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The component nginx serves from current/<name>: `nginx.frontend`,
    /// else the component named `frontend`, if any.
    pub fn nginx_frontend(&self) -> Option<(&str, &Component)> {
        let name = self.nginx.frontend.as_deref().unwrap_or("frontend");
        self.components
            .get_key_value(name)
            .map(|(n, c)| (n.as_str(), c))
    }

    /// The component /api/ is proxied to: `nginx.backend`, else the
    /// component named `backend`, if any.
    pub fn nginx_backend(&self) -> Option<(&str, &Component)> {
        let name = self.nginx.backend.as_deref().unwrap_or("backend");
        self.components
            .get_key_value(name)
            .map(|(n, c)| (n.as_str(), c))
    }

    /// What nginx listens on: `nginx.listen`, else the frontend's port.
    pub fn nginx_listen(&self) -> Option<String> {
        self.nginx
            .listen
            .clone()
            .or_else(|| self.nginx_frontend().map(|(_, c)| c.port.to_string()))
    }

    /// The components an artifact of `kind` carries, or `None` for a kind
    /// the config does not know.
    pub fn components_of(&self, kind: &str) -> Option<&[String]> {
        self.kinds.get(kind).map(Vec::as_slice)
    }
}

/// The keys of a `switch = "blue-green"` component, one by one.
fn check_blue_green(name: &str, c: &Component) -> Result<(), (String, String)> {
    let key = |k: &str| format!("components.{name}.{k}");
    if c.port != 0 {
        return Err((
            key("port"),
            "expected no port for a blue-green component: it listens on `ports`, one per slot (ports = [8081, 8082])".into(),
        ));
    }
    match c.ports.as_slice() {
        [blue, green] if *blue != 0 && *green != 0 && blue != green => {}
        other => {
            return Err((
                key("ports"),
                format!("expected two different ports from 1 to 65535, blue then green (ports = [8081, 8082]), found {other:?}"),
            ))
        }
    }
    if c.start.is_none() || c.stop.is_none() {
        return Err((
            key("start"),
            "expected start and stop commands: a blue-green component is started and stopped per slot ($CUTOVER_SLOT, $CUTOVER_PORT)".into(),
        ));
    }
    if c.reload.is_some() {
        return Err((
            key("reload"),
            "expected no reload: a blue-green component is started on the idle slot (nginx.reload moves the traffic)".into(),
        ));
    }
    match &c.health_url {
        Some(u) if u.contains("{port}") => {}
        Some(u) => {
            return Err((
                key("health_url"),
                format!("expected {{port}} in the URL (each slot is checked on its own port), found {u:?}"),
            ))
        }
        None => {
            return Err((
                key("health_url"),
                "expected a health URL with {port} (\"http://127.0.0.1:{port}/api/health\"): its path is also checked through nginx after the switch".into(),
            ))
        }
    }
    Ok(())
}

/// `[a-z][a-z0-9-]*`: the shape of kind and component names.
pub fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
root = "/srv/cutover"
[kinds]
full = ["backend", "frontend"]
frontend = ["frontend"]
[components.backend]
port = 8080
health_url = "http://127.0.0.1:8080/api/health"
stop = "systemctl stop catalog-backend"
start = "systemctl start catalog-backend"
[components.frontend]
port = 80
reload = "systemctl reload nginx"
[switcher]
verify_timeout = "90s"
max_unpacked_size = "2 GiB"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/cutover/cutover.toml"), text)
    }

    #[test]
    fn reads_the_documented_shape() {
        let c = parse(GOOD).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.root, Path::new("/srv/cutover"));
        assert_eq!(c.components["backend"].port, 8080);
        assert_eq!(c.components_of("full").map(<[String]>::len), Some(2));
        assert_eq!(c.switcher.verify_timeout, Duration::from_secs(90));
        assert_eq!(c.switcher.max_unpacked_size, 2 << 30);
        assert_eq!(c.switcher.keep_releases, 5);
        assert_eq!(c.switcher.max_clock_skew, Duration::from_secs(300));
        assert_eq!(c.switcher.max_log_size, 10 << 20);
        let c =
            parse(&format!("{GOOD}max_clock_skew = \"90s\"\n")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.switcher.max_clock_skew, Duration::from_secs(90));
    }

    #[test]
    fn relative_root_is_relative_to_the_file() {
        let c = Config::parse(
            Path::new("/tmp/sandbox/cutover.toml"),
            &GOOD.replace("/srv/cutover", "root"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.root, Path::new("/tmp/sandbox/root"));
    }

    #[track_caller]
    fn fails(text: &str, needles: &[&str]) {
        let e = parse(text).expect_err("should fail").to_string();
        assert!(e.contains("/etc/cutover/cutover.toml"), "{e}");
        for n in needles {
            assert!(e.contains(n), "{e:?} should contain {n:?}");
        }
    }

    #[test]
    fn errors_name_file_key_and_expectation() {
        fails(
            &GOOD.replace("port = 8080", "port = \"http\""),
            &["port", "expected u16", "line 7"],
        );
        fails(
            &GOOD.replace("port = 8080", "port = 0"),
            &["components.backend.port", "1 to 65535"],
        );
        fails(&GOOD.replace("port = 8080", "port = 70000"), &["port"]);
        fails(
            &GOOD.replace("frontend = [\"frontend\"]", "frontend = [\"web\"]"),
            &["kinds.frontend", "\"web\""],
        );
        fails(
            &GOOD.replace("verify_timeout = \"90s\"", "verify_timeout = \"soon\""),
            &["verify_timeout", "duration"],
        );
        fails(
            &GOOD.replace("start = \"systemctl start catalog-backend\"", ""),
            &["components.backend.start"],
        );
        fails(
            &format!("{GOOD}\nkeep_releases = 1\n"),
            &["switcher.keep_releases", "at least 2"],
        );
        fails(&format!("{GOOD}\nbranchez = []\n"), &["branchez"]);
        fails(
            &format!("{GOOD}\nbranches = [\"a..b\"]\n"),
            &["switcher.branches", "'..'"],
        );
        fails(
            &format!("{GOOD}\nmax_clock_skew = \"2 days\"\n"),
            &["switcher.max_clock_skew", "at most 1 day"],
        );
        fails(
            &format!("{GOOD}\nmax_clock_skew = \"a bit\"\n"),
            &["max_clock_skew", "duration"],
        );
        fails(
            &format!("{GOOD}\nmax_log_size = 100\n"),
            &["switcher.max_log_size", "at least 1 KiB"],
        );
        fails("root = 1", &["root"]);
        fails(
            &format!("{GOOD}\n[nginx]\nfrontend = \"web\"\n"),
            &["nginx.frontend", "\"web\""],
        );
        fails(
            &format!("{GOOD}\n[nginx]\nlisten = 8081\n"),
            &[
                "nginx.listen",
                "expected port 80",
                "components.frontend.port",
            ],
        );
        fails(
            &format!("{GOOD}\n[nginx]\nlisten = \"80; x\"\n"),
            &["nginx.listen", "ADDRESS:PORT"],
        );
        fails(&format!("{GOOD}\n[nginx]\nlistn = 80\n"), &["listn"]);
    }

    #[test]
    fn store_and_fleet_keys() {
        let store = "[store]\nurl = \"s3://cutover/builds\"\nendpoint = \"http://127.0.0.1:8333\"\ncredentials_file = \"creds\"\n";
        let c = parse(&format!("{GOOD}\n{store}\n[fleet]\ngroup = \"staging\"\nid = \"vm-1\"\nmax_parallel = \"25%\"\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        let s = c.store.as_ref().unwrap();
        assert_eq!(
            s.bucket_and_prefix().unwrap(),
            ("cutover".into(), "builds".into())
        );
        assert!(s.path_style(), "path style by default with an endpoint");
        assert_eq!(
            s.credentials_file.as_deref(),
            Some(Path::new("/etc/cutover/creds"))
        );
        let f = c.fleet.as_ref().unwrap();
        assert_eq!(
            f.max_parallel,
            Some(crate::fleet_config::MaxParallel::Percent(25))
        );
        assert_eq!(f.vm_id().unwrap(), "vm-1");
        assert_eq!(f.max_failures, 1);

        fails(
            &format!("{GOOD}\n[fleet]\ngroup = \"g\"\n"),
            &["`fleet`", "[store]"],
        );
        fails(
            &format!("{GOOD}\n[store]\nurl = \"https://x/y\"\n"),
            &["store.url", "s3://"],
        );
        fails(
            &format!("{GOOD}\n[store]\nurl = \"s3://cutover/a/../b\"\n"),
            &["store.url", "\"..\""],
        );
        fails(
            &format!("{GOOD}\n{store}\n[fleet]\nmax_parallel = \"150%\"\n"),
            &["max_parallel", "150%"],
        );
        fails(
            &format!("{GOOD}\n{store}\n[fleet]\nmax_parallel = 0\n"),
            &["max_parallel", "found 0"],
        );
        fails(
            &format!("{GOOD}\n{store}\n[fleet]\nid = \"vm/1\"\n"),
            &["fleet.id", "vm/1"],
        );
        fails(
            &format!("{GOOD}\n{store}\n[fleet]\nlease_ttl = \"1s\"\n"),
            &["fleet.lease_ttl", "at least 3 s"],
        );
        fails(
            &format!("{GOOD}\n{store}\n[fleet]\nmax_failures = 0\n"),
            &["fleet.max_failures"],
        );
        fails(&format!("{GOOD}\n{store}\nbucket = \"x\"\n"), &["bucket"]);
    }

    #[test]
    fn nginx_defaults_and_keys() {
        let c = parse(GOOD).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.nginx_listen().as_deref(), Some("80"));
        assert_eq!(c.nginx_frontend().map(|(n, _)| n), Some("frontend"));
        assert_eq!(c.nginx_backend().map(|(_, b)| b.port), Some(8080));
        let c = parse(&format!(
            "{GOOD}\n[nginx]\nlisten = \"127.0.0.1:80\"\nbackend = \"frontend\"\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.nginx_listen().as_deref(), Some("127.0.0.1:80"));
        assert_eq!(c.nginx_backend().map(|(n, _)| n), Some("frontend"));
        assert_eq!(listen_port("[::1]:443"), Some(443));
        assert_eq!(listen_port("x"), None);
    }

    /// GOOD with a blue-green backend (`{backend}` replaced by its keys).
    fn blue_green(backend_keys: &str, nginx: &str) -> String {
        let text = GOOD.replace(
            "port = 8080\nhealth_url = \"http://127.0.0.1:8080/api/health\"\n",
            backend_keys,
        );
        format!("{text}\n[nginx]\n{nginx}")
    }

    const BG: &str = "switch = \"blue-green\"\nports = [8081, 8082]\nhealth_url = \"http://127.0.0.1:{port}/api/health\"\n";
    const RELOAD: &str = "reload = \"systemctl reload nginx\"\n";

    #[test]
    fn blue_green_keys() {
        let c = parse(&blue_green(BG, RELOAD)).unwrap_or_else(|e| panic!("{e}"));
        let b = &c.components["backend"];
        assert!(b.is_blue_green());
        assert_eq!((b.port, b.drain), (8081, Duration::from_secs(2)));
        assert_eq!(
            b.health_url_on(8082).as_deref(),
            Some("http://127.0.0.1:8082/api/health")
        );
        assert!(!c.components["frontend"].is_blue_green());
        fails(
            &blue_green(&BG.replace("[8081, 8082]", "[8081]"), RELOAD),
            &["components.backend.ports", "two different ports"],
        );
        fails(
            &blue_green(&BG.replace("[8081, 8082]", "[8081, 8081]"), RELOAD),
            &["components.backend.ports"],
        );
        fails(
            &blue_green(&format!("{BG}port = 8080\n"), RELOAD),
            &["components.backend.port", "ports"],
        );
        fails(
            &blue_green(&BG.replace("{port}", "8081"), RELOAD),
            &["components.backend.health_url", "{port}"],
        );
        fails(&blue_green(BG, ""), &["nginx.reload"]);
        fails(
            &blue_green(BG, &format!("{RELOAD}backend = \"frontend\"\n")),
            &["components.backend.switch", "nginx.backend"],
        );
        fails(
            &blue_green(&BG.replace("blue-green", "sideways"), RELOAD),
            &["switch", "restart"],
        );
        fails(
            &GOOD.replace("port = 8080\n", "port = 8080\nports = [1, 2]\n"),
            &["components.backend.ports", "blue-green"],
        );
        fails(
            &format!(
                "{}\n[components.worker]\nport = 9000\nstart = \"a\"\nstop = \"b\"\n",
                blue_green(BG, RELOAD).replace(
                    "full = [\"backend\", \"frontend\"]",
                    "full = [\"backend\", \"frontend\", \"worker\"]"
                )
            ),
            &["kinds.full", "\"worker\""],
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("10"), Some(10));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("5 parsecs"), None);
    }
}

#[cfg(test)]
mod example {
    /// The annotated example in deploy/ must always load.
    #[test]
    fn deploy_example_loads() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/cutover.toml");
        let config = super::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.components["backend"].linked_dirs,
            ["logs", "uploads"]
        );
    }
}

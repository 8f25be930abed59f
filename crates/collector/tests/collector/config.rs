//! Config errors exit 78 (EX_CONFIG) with a message naming the file and key.

use cutover_tests::Sandbox;

use crate::support::collect;

#[test]
fn bad_key_value_exits_78_naming_file_and_key() {
    let sb = Sandbox::new();
    sb.write_config("[collector]\nstaging_keep = \"many\"\n");
    let run = collect(&sb, &[]);
    run.code_is(78);
    run.stderr_has(&sb.config.display().to_string());
    run.stderr_has("staging_keep");
    assert!(!sb.path("staging").exists(), "nothing done\n{run}");
}

#[test]
fn unknown_key_exits_78() {
    let sb = Sandbox::new();
    sb.write_config("[collector]\nstale_after = \"10m\"\n");
    let run = collect(&sb, &[]);
    run.code_is(78);
    run.stderr_has(&sb.config.display().to_string());
    run.stderr_has("stale_after");
}

#[test]
fn missing_config_exits_78_naming_the_file() {
    let sb = Sandbox::new();
    let missing = sb.dir().join("nope.toml");
    let run = collect(&sb, &["--config", missing.to_str().unwrap()]);
    run.code_is(78);
    run.stderr_has(&missing.display().to_string());
}

#[test]
fn config_flag_overrides_the_environment() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    // CUTOVER_CONFIG points at `sb`; --config at `other`.
    let run = collect(&sb, &["--config", other.config.to_str().unwrap()]);
    run.success();
    assert!(other.path("staging").exists(), "{run}");
    assert!(!sb.path("staging").exists(), "{run}");
}

#[test]
fn drop_folder_that_is_staging_is_a_config_error() {
    let sb = Sandbox::new();
    let a = crate::support::artifact("full", "1.0.0", 10);
    a.drop_into(&sb.drop_dir());
    crate::support::collect_ok(&sb);
    let staged = sb.names("staging");
    assert_eq!(staged.len(), 2);
    let config = std::fs::read_to_string(&sb.config).unwrap();
    sb.write_config_text(&format!("drop = \"root/staging\"\n{config}"));
    let run = collect(&sb, &[]);
    run.code_is(78);
    run.stderr_has("`drop`");
    run.stderr_has("staging folder");
    assert_eq!(sb.names("staging"), staged, "{run}");
}

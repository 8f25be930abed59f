//! The exit codes of all three binaries (`collector`, `switcher`,
//! `artifact-name`), in one place so that a number means one thing
//! wherever it is seen: in a cron mail, a failed systemd unit or a red CI
//! job. The README's exit-code table lists the same; each binary's `--help`
//! and man page list the ones it can return.
//!
//! | code | meaning | returned by |
//! | --- | --- | --- |
//! | 0 | [`OK`] | all |
//! | 1 | [`ERROR`] | all |
//! | 2 | [`USAGE`] | all |
//! | 3 | [`DEPLOY_FAILED`] | switcher; `artifact-name deliver --wait` |
//! | 4 | [`ROLLBACK_FAILED`] | switcher |
//! | 5 | [`CHECK_FAILED`] | `switcher check` |
//! | 6 | [`UPLOAD_FAILED`] | `artifact-name deliver` |
//! | 7 | [`WAIT_TIMED_OUT`] | `artifact-name deliver --wait` |
//! | 8 | [`WAIT_HELD`] | `artifact-name deliver --wait` |
//! | 9 | [`ROLLOUT_HALTED`] | `artifact-name deliver --wait --group` |
//! | 10 | [`STORE_UNFIT`] | `switcher check`, switcher (rolling mode) |
//! | 78 | [`CONFIG`] | collector, switcher |
//! | 130, 143 | [`CANCELLED_SIGINT`], [`CANCELLED_SIGTERM`] | `artifact-name deliver` |

/// Done: the pass ended well (deployed, nothing to do, or another run holds
/// the lock), or the command did what it was asked.
pub const OK: u8 = 0;

/// An error; the message on stderr says what. The collector: a pass failed
/// on some file (bad files are quarantined, which is not an error); the
/// switcher: an error outside a deploy (I/O, state); `artifact-name`: a name
/// or part outside the contract, a build that cannot be packed.
pub const ERROR: u8 = 1;

/// The command line is not valid (clap's own code).
pub const USAGE: u8 = 2;

/// A deploy failed: it was rolled back, or it failed while preparing and
/// nothing running was touched; the previous release runs. `artifact-name
/// deliver --wait` returns it when the switcher marked the delivered
/// artifact failed.
pub const DEPLOY_FAILED: u8 = 3;

/// A deploy failed and going back failed too: the service may be down.
pub const ROLLBACK_FAILED: u8 = 4;

/// `switcher check` found problems (each is printed with its fix).
pub const CHECK_FAILED: u8 = 5;

/// `artifact-name deliver`: the upload failed on at least one target, after
/// the retries.
pub const UPLOAD_FAILED: u8 = 6;

/// `artifact-name deliver --wait`: neither the artifact nor a build made
/// later ran within `--wait-timeout`.
pub const WAIT_TIMED_OUT: u8 = 7;

/// `artifact-name deliver --wait`: the artifact will not deploy by itself:
/// the VM is frozen or a component it carries is pinned (`switcher freeze`,
/// `switcher pin`).
pub const WAIT_HELD: u8 = 8;

/// `artifact-name deliver --wait --group`: the group's rollout of the
/// artifact halted: `[fleet] max_failures` VMs failed it, so no VM of the
/// group tries it any more (docs/fleet.md).
pub const ROLLOUT_HALTED: u8 = 9;

/// The store (`[store]`) cannot be used for what was asked: `switcher
/// check` found it ignores conditional writes, or rolling mode refused to
/// start on such a store (docs/fleet.md, "Conditional writes").
pub const STORE_UNFIT: u8 = 10;

/// The config file is missing or not valid (`EX_CONFIG` of sysexits.h).
pub const CONFIG: u8 = 78;

/// `artifact-name deliver` was interrupted (SIGINT, 128 + 2, as a shell
/// reports it): the upload was stopped and its temporary files removed.
pub const CANCELLED_SIGINT: u8 = 130;

/// `artifact-name deliver` was terminated (SIGTERM, 128 + 15, as a CI runner
/// cancels a job): the upload was stopped and its temporary files removed.
pub const CANCELLED_SIGTERM: u8 = 143;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_number_means_two_things() {
        let mut all = [
            OK,
            ERROR,
            USAGE,
            DEPLOY_FAILED,
            ROLLBACK_FAILED,
            CHECK_FAILED,
            UPLOAD_FAILED,
            WAIT_TIMED_OUT,
            WAIT_HELD,
            ROLLOUT_HALTED,
            STORE_UNFIT,
            CONFIG,
            CANCELLED_SIGINT,
            CANCELLED_SIGTERM,
        ];
        all.sort_unstable();
        let len = all.len();
        let mut unique = all.to_vec();
        unique.dedup();
        assert_eq!(unique.len(), len, "{all:?}");
    }
}

//! What /proc says about processes: resident memory, and the members of a
//! process group. Status uses it to show what a backend really costs, since an
//! `npx` server is several processes (`npm exec`, `node`) in one group.

use std::collections::HashMap;

/// Resident memory of a process in KiB (Linux; `None` elsewhere or when gone).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_kib())
}

fn page_kib() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().map_or(4, |bytes| (bytes as u64) / 1024)
}

/// The processes of one process group and their resident memory together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupUsage {
    pub processes: usize,
    pub rss_kib: u64,
}

/// The members of every process group, summed, from one pass over /proc
/// (status asks for several groups at once).
pub fn group_usages() -> HashMap<u32, GroupUsage> {
    let mut groups: HashMap<u32, GroupUsage> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return groups };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(pgid) = process_group(&stat) else { continue };
        let usage = groups.entry(pgid).or_insert(GroupUsage { processes: 0, rss_kib: 0 });
        usage.processes += 1;
        usage.rss_kib += rss_kib(pid).unwrap_or(0);
    }
    groups
}

/// The process group field of a `/proc/PID/stat` line. The command name in
/// parentheses may itself hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn process_group(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state, ppid, pgrp.
    rest.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_group_after_an_awkward_command_name() {
        assert_eq!(process_group("42 (a) b (c)) S 1 4242 4242 0 -1"), Some(4242));
        assert_eq!(process_group("garbage"), None);
    }

    #[test]
    fn counts_this_process_group() {
        let pgid = nix::unistd::getpgrp().as_raw() as u32;
        let usage = group_usages().remove(&pgid).expect("our own group is visible");
        assert!(usage.processes >= 1 && usage.rss_kib > 0, "{usage:?}");
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}

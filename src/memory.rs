//! Giving memory back to the system once the daemon is idle.
//!
//! glibc's allocator keeps what a burst of sessions freed in its arenas, so a
//! daemon that served a thousand sessions stays at that size after they all
//! left (it does not grow further: it reuses it). Once the last session has
//! left and the daemon has settled, the free memory of the arena is returned,
//! and so are the code pages serving faulted in (the next session brings back
//! what it runs).

/// One malloc arena for the whole daemon (glibc only; elsewhere a no-op). By
/// default glibc gives each thread that allocates an arena of its own, and
/// each keeps what it once held: the daemon's worker and blocking threads held
/// 0.7 MB more anonymous memory with five terminals connected (2.7 MB instead
/// of 2.0). Small allocations come from each thread's cache without the
/// arena's lock, so throughput did not drop (fast fixture, 32 sessions and
/// 16 × 8, side by side). Call before any thread starts.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns freed heap memory to the system once the daemon has settled
/// (glibc only; elsewhere a no-op). Called when the last session leaves; the
/// trim waits for [`SETTLE`] like the code pages do, because the last
/// sessions' teardown goes on after they left the sessions map (their spans
/// close, their connections' halves and subscription tasks are dropped), and
/// what is freed after a trim stays resident: after 1,000 idle sessions, a
/// trim run again by hand once all that was done gave back another 1.2 MB of
/// the 6.8 MB heap that the trim at the last leave had kept (`mcpbench idle`).
/// Needs a Tokio runtime.
pub fn release_freed() {
    TRIM_WANTED.store(true, std::sync::atomic::Ordering::Release);
    settle();
}

/// How long the daemon must have started no session and no backend (nor
/// seen its last session leave) before it lets go of the code pages that did
/// so, and of the heap memory they freed.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(3);

/// Set by [`release_freed`]: the next settle also trims the heap.
static TRIM_WANTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Lets go of the code pages once the daemon has settled: a session's set-up
/// and a backend's start run code (handshakes, listings, catalogs, spawning)
/// that relaying calls never runs, and the kernel maps 64 KiB around each
/// fault, so a daemon serving five terminals held 7 MB of its own binary's
/// code, about three quarters of its RSS. Called at each such start; the
/// pages go once [`SETTLE`] has passed without another. Needs a Tokio runtime.
pub fn drop_code_when_settled() {
    settle();
}

/// Notes an event (a start, the last leave) and makes sure one task waits
/// until [`SETTLE`] has passed since the latest, then trims (if
/// [`release_freed`] asked) and drops the code pages. One task waits at a
/// time, however many sessions start (a thousand at once must not leave a
/// thousand timers), and it acts [`SETTLE`] after the latest event, not up to
/// twice that (a snapshot taken past [`SETTLE`] must see the result).
fn settle() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use tokio::time::Instant;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    static LATEST_MS: AtomicU64 = AtomicU64::new(0);
    static WAITING: AtomicBool = AtomicBool::new(false);
    let epoch = *EPOCH.get_or_init(Instant::now);
    let since_epoch = |at: Instant| u64::try_from(at.duration_since(epoch).as_millis()).unwrap_or(u64::MAX);
    LATEST_MS.fetch_max(since_epoch(Instant::now()), Ordering::AcqRel);
    if WAITING.swap(true, Ordering::AcqRel) {
        return; // The waiting task sees this event.
    }
    tokio::spawn(async move {
        let mut latest = LATEST_MS.load(Ordering::Acquire);
        loop {
            let due = epoch + std::time::Duration::from_millis(latest) + SETTLE;
            if Instant::now() >= due {
                break;
            }
            tokio::time::sleep_until(due).await;
            latest = LATEST_MS.load(Ordering::Acquire);
        }
        WAITING.store(false, Ordering::Release);
        if LATEST_MS.load(Ordering::Acquire) != latest {
            settle(); // An event came as this task was leaving: wait for it too.
        }
        let trim = TRIM_WANTED.swap(false, Ordering::AcqRel);
        tokio::task::spawn_blocking(move || {
            if trim {
                trim_heap();
            }
            drop_mapped_code();
        });
    });
}

/// Returns the free memory of the allocator's arenas to the system.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes the allocator's locks and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Unmaps the pages of program code (this executable's and its shared
/// libraries') from this process, so that only what runs from now on is
/// faulted back in. For the shim: starting up touches most of its code and of
/// libc, and the kernel maps file pages 64 KiB around each fault, so a relay
/// that then runs a few functions in a loop showed 2.7 MB resident, nearly all
/// of it code it will not run again. The pages stay in the page cache (shared
/// with every other process): this changes what is resident here, not what is
/// read from disk.
///
/// Only private, read-only, file-backed mappings with no page of their own
/// (`Anonymous: 0`: never written, as code and constants are not; the
/// relocated read-only data is written once at load, and is kept) are
/// dropped: those hold nothing but copies of the file, which the kernel reads
/// back on the next use.
pub fn drop_mapped_code() {
    #[cfg(target_os = "linux")]
    {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return };
        let mut current: Option<(usize, usize)> = None;
        let mut code = Vec::new();
        for line in smaps.lines() {
            if let Some(anonymous) = line.strip_prefix("Anonymous:") {
                if let Some(range) = current.take()
                    && anonymous.trim() == "0 kB"
                {
                    code.push(range);
                }
            } else if let Some(header) = mapping_header(line) {
                current = header;
            }
        }
        drop(smaps);
        // All at the end, in a loop that runs nothing else: dropping each
        // mapping as soon as its entry was read had the parsing of the
        // entries after it fault its code straight back in (the program's
        // own code comes first in the file), and the kernel maps 64 KiB
        // around each fault: the daemon kept 2.1 MB of its code that way.
        for (start, end) in code {
            // SAFETY: the range is a whole mapping of unmodified file pages
            // (checked above); MADV_DONTNEED on it only makes the next
            // access fault the same bytes back in from the file.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

/// An smaps header line (`start-end perms offset device inode [path]`): `Some`
/// with the range of a private read-only file mapping (code, constants; its
/// relocated part has anonymous pages and is skipped by the caller), `Some(None)`
/// for any other mapping; `None` for the lines in between.
#[cfg(target_os = "linux")]
fn mapping_header(line: &str) -> Option<Option<(usize, usize)>> {
    let mut fields = line.split_ascii_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let _device = fields.next()?;
    let inode = fields.next()?;
    let code = matches!(perms, "r-xp" | "r--p") && inode != "0" && fields.next().is_some() && end > start;
    Some(code.then_some((start, end)))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn finds_code_mappings_only() {
        let code = "55d0c0a00000-55d0c0b00000 r-xp 00001000 08:01 1234   /usr/bin/x";
        assert_eq!(mapping_header(code), Some(Some((0x55d0c0a00000, 0x55d0c0b00000))));
        assert_eq!(mapping_header("7f00-7f10 rw-p 00000000 08:01 1234 /usr/lib/libc.so.6"), Some(None));
        assert_eq!(
            mapping_header("7f00-7f10 r--p 00000000 08:01 1234 /usr/lib/libc.so.6"),
            Some(Some((0x7f00, 0x7f10)))
        );
        assert_eq!(mapping_header("7f00-7f10 r--s 00000000 08:01 1234 /shared"), Some(None));
        assert_eq!(mapping_header("7f00-7f10 r-xp 00000000 00:00 0 [vdso]"), Some(None));
        assert_eq!(mapping_header("7f00-7f10 r-xp 00000000 00:00 0"), Some(None));
        assert_eq!(mapping_header("Anonymous:             0 kB"), None);
        assert_eq!(mapping_header("FilePmdMapped:         0 kB"), None);
    }

    #[test]
    fn dropping_code_pages_keeps_the_process_running() {
        drop_mapped_code();
        // Code runs again (faulted back in): formatting, allocation, I/O.
        assert_eq!(format!("{}", 40 + 2), "42");
    }
}

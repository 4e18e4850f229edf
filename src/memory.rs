//! Giving memory back to the system once the daemon is idle.
//!
//! glibc's allocator keeps what a burst of sessions freed in its arenas, so a
//! daemon that served a thousand sessions stays at that size after they all
//! left (it does not grow further: it reuses it). When the last session leaves,
//! the free memory at the top of each arena is returned.

/// Returns freed heap memory to the system (glibc only; elsewhere a no-op).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::task::spawn_blocking(|| {
        // SAFETY: malloc_trim only walks the allocator's own free lists; it
        // takes the allocator's locks and is safe to call from any thread.
        unsafe {
            libc::malloc_trim(0);
        }
    });
}

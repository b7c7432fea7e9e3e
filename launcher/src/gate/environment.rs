//! The environment an exec hands its new image, read from the calling task's memory for the
//! entries the shim's rule judges (`reach::carries_shim`: `LD_PRELOAD`, `LD_AUDIT` and the
//! run's `MEMLOCK_RUN_*` settings), and nothing kept of the rest.
//!
//! The array is the task's: any number of pointers, each to any string, the same string as
//! often as it likes. So the gate reads it in batches of fixed size (the pointers, then the
//! first bytes of each string, a system call for each), and reads whole only an entry it
//! judges, one at a time, handed to the rule and dropped: whatever the task's environment,
//! the gate holds one batch and one entry. Every read is bounded by what execve(2) itself
//! accepts, whatever the task's stack limit (fs/exec.c, Linux 4.13 on: a string of at most
//! MAX_ARG_STRLEN bytes with its NUL; strings, and pointers of 8 bytes each, within 3/4 of
//! _STK_LIM); past a bound the kernel would fail the exec with E2BIG, and the gate refuses it,
//! with a line, rather than read on or judge what it has read so far ([`Stop`]).
//!
//! Which of several entries of a name counts is the consumer's: glibc's ld.so takes the last
//! `LD_PRELOAD` (measured: 2.36), musl's the first (getenv; measured: 1.2.3), and the shim
//! applies the settings in order; `reach::carries_shim` sees them all, in order, and decides
//! so (one `LD_PRELOAD` only, no `LD_AUDIT`).

use super::task::read_vectors;

/// The most bytes of one string execve copies, its NUL included (MAX_ARG_STRLEN, 32 pages).
pub(super) const MAX_ARG_STRLEN: usize = 32 * 4096;
/// The most bytes of strings execve copies (3/4 of _STK_LIM, 8 MiB), and so the most
/// pointers, each of which takes 8 bytes of the same room (bprm_stack_limits).
pub(super) const MOST_STRING_BYTES: usize = 8 * 1024 * 1024 / 4 * 3;
pub(super) const MOST_ENTRIES: usize = MOST_STRING_BYTES / 8;
/// The first bytes of every string read in one call: a name the rule judges, and most of
/// their whole entries (`LD_PRELOAD=/usr/lib/...`, `MEMLOCK_RUN_FLAGS=current`).
const HEAD: usize = 64;
/// Pointers read at a time.
const BATCH: usize = 256;
const PAGE: u64 = 4096;

/// Why the gate stopped reading: it cannot, or the kernel would refuse the exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// A pointer or string the gate cannot read (the task's memory is withheld, or unmapped).
    Unreadable,
    /// More entries than execve takes.
    TooMany,
    /// An entry longer than execve takes.
    TooLong,
    /// More bytes of strings than execve takes.
    TooMuch,
}

impl Stop {
    /// Words for the gate's line (a bound), or None where the rule's own words say it.
    pub(super) fn bound(self) -> Option<String> {
        match self {
            Stop::Unreadable => None,
            Stop::TooMany => Some(format!(
                "its environment holds more than {MOST_ENTRIES} entries, more than execve accepts"
            )),
            Stop::TooLong => Some(format!(
                "an entry of its environment is longer than execve accepts ({} KiB)",
                MAX_ARG_STRLEN / 1024
            )),
            Stop::TooMuch => Some(format!(
                "the strings of its environment come to more than execve accepts ({} MiB)",
                MOST_STRING_BYTES / (1024 * 1024)
            )),
        }
    }
}

/// Whether an entry (or its first bytes) is one the rule judges.
fn judged(head: &[u8]) -> bool {
    [
        &b"LD_PRELOAD="[..],
        b"LD_AUDIT=",
        memlock_run_protocol::PREFIX.as_bytes(),
    ]
    .iter()
    .any(|name| head.starts_with(name))
}

/// The entries of a task's environment array that the rule judges, in order, each read whole
/// when it is reached; when it ends early, `stop` says why, and nothing read is to be judged.
pub(super) struct Entries {
    pid: i32,
    /// The next pointer's address; 0 once the array's NULL has been read.
    next: u64,
    wide: bool,
    pointers: Vec<u64>,
    heads: Vec<[u8; HEAD]>,
    /// Bytes of each head read: HEAD, or fewer with the string's NUL among them.
    lens: Vec<usize>,
    cursor: usize,
    entries: usize,
    /// Bytes of the strings so far, as far as read (at least what execve would copy of them).
    bytes: usize,
    pub(super) stop: Option<Stop>,
}

impl Entries {
    /// The array at `at` in task `pid`'s memory (NULL: none), of 8-byte pointers or
    /// (an i386 task) 4-byte ones.
    pub(super) fn new(pid: i32, at: u64, wide: bool) -> Entries {
        Entries {
            pid,
            next: at,
            wide,
            pointers: Vec::with_capacity(BATCH),
            heads: Vec::with_capacity(BATCH),
            lens: Vec::with_capacity(BATCH),
            cursor: 0,
            entries: 0,
            bytes: 0,
            stop: None,
        }
    }

    fn halt(&mut self, why: Stop) -> Option<Vec<u8>> {
        self.stop = Some(why);
        None
    }

    /// The next batch of pointers and their heads; false at the array's end or a stop.
    fn fill(&mut self) -> bool {
        self.pointers.clear();
        self.cursor = 0;
        if self.next == 0 {
            return false;
        }
        let width = if self.wide { 8 } else { 4 };
        let mut raw = [0u8; BATCH * 8];
        let want = (MOST_ENTRIES + 1 - self.entries).min(BATCH) * width;
        // The array may cross into a page that is not mapped after its NULL.
        let room = ((PAGE - self.next % PAGE) as usize).min(want);
        let (this_page, next_page) = raw[..want].split_at_mut(room);
        let got = read_vectors(
            self.pid,
            &mut [(self.next, this_page), (self.next + room as u64, next_page)],
        );
        if got < width {
            self.stop = Some(Stop::Unreadable);
            return false;
        }
        for word in raw[..got - got % width].chunks_exact(width) {
            let mut bytes = [0u8; 8];
            bytes[..width].copy_from_slice(word);
            let pointer = u64::from_le_bytes(bytes);
            if pointer == 0 {
                self.next = 0;
                break;
            }
            self.pointers.push(pointer);
        }
        if self.next != 0 {
            self.next += (got - got % width) as u64;
        }
        self.entries += self.pointers.len();
        if self.entries > MOST_ENTRIES {
            self.stop = Some(Stop::TooMany);
            return false;
        }
        self.read_heads()
    }

    /// The first HEAD bytes of each string of the batch (fewer where its NUL comes first):
    /// up to its page's end in one call for all, then the rest from the next page in another
    /// for those cut there, so that a string near the end of a mapping fails no other read.
    fn read_heads(&mut self) -> bool {
        let n = self.pointers.len();
        self.heads.clear();
        self.heads.resize(n, [0u8; HEAD]);
        self.lens.clear();
        for &at in &self.pointers {
            self.lens.push((PAGE - at % PAGE).min(HEAD as u64) as usize);
        }
        if !self.read_heads_by_page() {
            let mut first = Vec::with_capacity(n);
            for ((head, &len), &at) in self.heads.iter_mut().zip(&self.lens).zip(&self.pointers) {
                first.push((at, &mut head[..len]));
            }
            let want: usize = self.lens.iter().sum();
            if read_vectors(self.pid, &mut first) != want {
                self.stop = Some(Stop::Unreadable);
                return false;
            }
        }
        if self.stop.is_some() {
            return false;
        }
        let mut rest = Vec::new();
        for ((head, len), &at) in self
            .heads
            .iter_mut()
            .zip(&mut self.lens)
            .zip(&self.pointers)
        {
            if *len < HEAD && !head[..*len].contains(&0) {
                rest.push((at + *len as u64, &mut head[*len..]));
                *len = HEAD;
            }
        }
        let want: usize = rest.iter().map(|(_, b)| b.len()).sum();
        if want > 0 && read_vectors(self.pid, &mut rest) != want {
            self.stop = Some(Stop::Unreadable);
            return false;
        }
        true
    }

    /// The heads' first parts (each up to its page's end, `lens`) read a page at a time where
    /// they lie on few pages, as an environment's strings do (end to end, on a page or a few):
    /// one vector per page holding heads, from its first head to its last one's end, so that
    /// the kernel pins each page once rather than once per string. A head on a page that cannot
    /// be read fails the whole read, as it does one vector per head. False where the heads
    /// lie on more than SPAN_PAGES pages: then a vector per head (at most BATCH).
    fn read_heads_by_page(&mut self) -> bool {
        const SPAN_PAGES: usize = 16;
        let mut order: Vec<usize> = (0..self.pointers.len()).collect();
        order.sort_unstable_by_key(|&i| self.pointers[i]);
        // (first byte, end) on one page each, in address order.
        let mut spans: Vec<(u64, u64)> = Vec::with_capacity(SPAN_PAGES);
        for &i in &order {
            let (at, end) = (self.pointers[i], self.pointers[i] + self.lens[i] as u64);
            let full = spans.len() == SPAN_PAGES;
            match spans.last_mut() {
                Some(span) if span.0 / PAGE == at / PAGE => span.1 = span.1.max(end),
                _ if full => return false,
                _ => spans.push((at, end)),
            }
        }
        let total: usize = spans.iter().map(|&(from, end)| (end - from) as usize).sum();
        let mut buf = vec![0u8; total];
        let mut pieces = Vec::with_capacity(spans.len());
        let mut rest = &mut buf[..];
        for &(from, end) in &spans {
            let (piece, tail) = rest.split_at_mut((end - from) as usize);
            pieces.push((from, piece));
            rest = tail;
        }
        if read_vectors(self.pid, &mut pieces) != total {
            self.stop = Some(Stop::Unreadable);
            return true;
        }
        let mut offset = 0;
        let mut span = 0;
        for &i in &order {
            let at = self.pointers[i];
            while spans[span].0 / PAGE != at / PAGE {
                offset += (spans[span].1 - spans[span].0) as usize;
                span += 1;
            }
            let from = offset + (at - spans[span].0) as usize;
            let len = self.lens[i];
            self.heads[i][..len].copy_from_slice(&buf[from..from + len]);
        }
        true
    }

    /// The string at `at` whole, without its NUL, its first HEAD bytes being `head`.
    fn read_whole(&mut self, at: u64, head: &[u8]) -> Result<Vec<u8>, Stop> {
        let mut entry = head.to_vec();
        loop {
            let budget = MOST_STRING_BYTES.saturating_sub(self.bytes);
            if entry.len() >= MAX_ARG_STRLEN {
                return Err(Stop::TooLong);
            }
            if entry.len() >= budget {
                return Err(Stop::TooMuch);
            }
            // Up to 64 KiB at a time, a page to a vector: a page past the string's NUL that
            // is not mapped ends the read there and costs nothing.
            let from = entry.len();
            let step = (MAX_ARG_STRLEN - from).min(budget - from).min(64 * 1024);
            entry.resize(from + step, 0);
            let start = at + from as u64;
            let mut pieces = Vec::new();
            let mut rest = &mut entry[from..];
            let mut addr = start;
            while !rest.is_empty() {
                let room = ((PAGE - addr % PAGE) as usize).min(rest.len());
                let (piece, tail) = rest.split_at_mut(room);
                pieces.push((addr, piece));
                addr += room as u64;
                rest = tail;
            }
            let got = read_vectors(self.pid, &mut pieces);
            if let Some(nul) = entry[from..from + got].iter().position(|&b| b == 0) {
                entry.truncate(from + nul);
                return Ok(entry);
            }
            if got < step {
                return Err(Stop::Unreadable);
            }
            entry.truncate(from + got);
        }
    }
}

impl Iterator for Entries {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if self.stop.is_some() {
                return None;
            }
            if self.cursor == self.pointers.len() && !self.fill() {
                return None;
            }
            let i = self.cursor;
            self.cursor += 1;
            let (head, len, at) = (self.heads[i], self.lens[i], self.pointers[i]);
            let head = &head[..len];
            let nul = head.iter().position(|&b| b == 0);
            if !judged(head) {
                // At least this much of it execve would copy.
                self.bytes += nul.map_or(len, |n| n + 1);
                if self.bytes > MOST_STRING_BYTES {
                    return self.halt(Stop::TooMuch);
                }
                continue;
            }
            let entry = match nul {
                Some(n) => head[..n].to_vec(),
                None => match self.read_whole(at, head) {
                    Ok(entry) => entry,
                    Err(why) => return self.halt(why),
                },
            };
            self.bytes += entry.len() + 1;
            if self.bytes > MOST_STRING_BYTES {
                return self.halt(Stop::TooMuch);
            }
            return Some(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    /// An environment array in this process's own memory, read as the gate reads a task's.
    fn read(env: &[&[u8]]) -> (Vec<Vec<u8>>, Option<Stop>) {
        let strings: Vec<CString> = env.iter().map(|e| CString::new(*e).unwrap()).collect();
        let mut array: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        array.push(std::ptr::null());
        let mut entries = Entries::new(std::process::id() as i32, array.as_ptr() as u64, true);
        let got = entries.by_ref().collect();
        (got, entries.stop)
    }

    #[test]
    fn only_the_judged_entries_come_whole_and_in_order() {
        let long = [b"LD_PRELOAD=".to_vec(), vec![b'a'; 70_000]].concat();
        let (got, stop) = read(&[
            b"PATH=/bin",
            b"MEMLOCK_RUN_FLAGS=current",
            &long,
            b"LD_AUDIT=",
            b"LD_PRELOADX=1",
            b"MEMLOCK_RUN_FLAGS=future",
        ]);
        assert_eq!(stop, None);
        let want: Vec<&[u8]> = vec![
            b"MEMLOCK_RUN_FLAGS=current",
            &long,
            b"LD_AUDIT=",
            b"MEMLOCK_RUN_FLAGS=future",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn an_entry_past_many_batches_is_read() {
        let mut env: Vec<&[u8]> = vec![b"P=1"; 3 * BATCH + 7];
        env.push(b"LD_PRELOAD=");
        let (got, stop) = read(&env);
        assert_eq!((got, stop), (vec![b"LD_PRELOAD=".to_vec()], None));
    }

    #[test]
    fn past_the_kernels_bounds_it_stops_and_says_which() {
        let long = [b"MEMLOCK_RUN_X=".to_vec(), vec![b'x'; MAX_ARG_STRLEN]].concat();
        assert_eq!(read(&[&long]).1, Some(Stop::TooLong));
        // The longest string execve takes is read whole.
        let fits = [b"MEMLOCK_RUN_X=".to_vec(), vec![b'x'; MAX_ARG_STRLEN - 15]].concat();
        assert_eq!(read(&[&fits]), (vec![fits.clone()], None));
        // One string named many times: read until its copies pass what execve takes.
        let big = [b"MEMLOCK_RUN_X=".to_vec(), vec![b'x'; 100_000]].concat();
        let env = vec![&big[..]; 4000];
        let (got, stop) = read(&env);
        assert_eq!(stop, Some(Stop::TooMuch));
        assert!(got.len() <= MOST_STRING_BYTES / 100_000, "{}", got.len());
        // Strings the rule does not judge count too, as far as read.
        let pad = [b'p'; HEAD * 2];
        let env = vec![&pad[..]; MOST_STRING_BYTES / HEAD + 1];
        assert_eq!(read(&env).1, Some(Stop::TooMuch));
        let env = vec![&b"P"[..]; MOST_ENTRIES + 1];
        assert_eq!(read(&env).1, Some(Stop::TooMany));
    }

    /// An i386 task's array: 4-byte pointers, here into a page below 4 GiB of this process.
    #[test]
    fn an_i386_array_is_read_with_its_own_width() {
        // SAFETY: a fresh anonymous page, written below and unmapped at the end.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                -1,
                0,
            )
        };
        assert_ne!(page, libc::MAP_FAILED);
        let base = page as usize;
        assert!(base + 4096 <= u32::MAX as usize, "{base:#x}");
        let strings: [&[u8]; 3] = [
            b"P=1\0",
            b"LD_PRELOAD=/lib/shim.so\0",
            b"MEMLOCK_RUN_HEAP=0\0",
        ];
        // SAFETY: within the page mapped above.
        let bytes = unsafe { std::slice::from_raw_parts_mut(page.cast::<u8>(), 4096) };
        let mut at = 64;
        for (i, string) in strings.iter().enumerate() {
            bytes[at..at + string.len()].copy_from_slice(string);
            bytes[i * 4..i * 4 + 4].copy_from_slice(&((base + at) as u32).to_le_bytes());
            at += string.len();
        }
        let mut entries = Entries::new(std::process::id() as i32, base as u64, false);
        let got: Vec<Vec<u8>> = entries.by_ref().collect();
        assert_eq!(entries.stop, None);
        assert_eq!(
            got,
            [&b"LD_PRELOAD=/lib/shim.so"[..], b"MEMLOCK_RUN_HEAP=0"]
        );
        // SAFETY: the page mapped above, no longer used.
        unsafe { libc::munmap(page, 4096) };
    }

    /// Strings at the end of a mapping: one whose NUL is the mapping's last byte is read whole
    /// (nothing past it is asked for, in the heads or after); one that runs on into the page
    /// that is not mapped is unreadable, as the kernel's copy would fault.
    #[test]
    fn a_string_at_a_mappings_end_is_read_to_its_nul_and_no_further() {
        // SAFETY: two fresh anonymous pages; the second is unmapped at once.
        let page = unsafe {
            let two = libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(two, libc::MAP_FAILED);
            libc::munmap(two.cast::<u8>().add(4096).cast(), 4096);
            two.cast::<u8>()
        };
        // SAFETY: the first page, still mapped.
        let bytes = unsafe { std::slice::from_raw_parts_mut(page, 4096) };
        let mut read = |string: &[u8]| {
            bytes.fill(b'x');
            let at = 4096 - string.len();
            bytes[at..].copy_from_slice(string);
            let array = [page as u64 + at as u64, 0];
            let mut entries = Entries::new(std::process::id() as i32, array.as_ptr() as u64, true);
            let got: Vec<Vec<u8>> = entries.by_ref().collect();
            (got, entries.stop)
        };
        // Shorter than a head, and longer (read whole from past its head).
        assert_eq!(
            read(b"LD_PRELOAD=/a\0"),
            (vec![b"LD_PRELOAD=/a".to_vec()], None)
        );
        let long = [&b"LD_PRELOAD="[..], &[b'/'; 200], b"\0"].concat();
        assert_eq!(read(&long), (vec![long[..long.len() - 1].to_vec()], None));
        assert_eq!(read(b"LD_PRELOAD=/a").1, Some(Stop::Unreadable));
        assert_eq!(read(&long[..long.len() - 1]).1, Some(Stop::Unreadable));
        // A string the rule does not judge, cut short by the mapping's end: so is the kernel's
        // copy of it.
        assert_eq!(read(b"PATH=/bin").1, Some(Stop::Unreadable));
        // SAFETY: the page mapped above, no longer used.
        unsafe { libc::munmap(page.cast(), 4096) };
    }

    /// Heads on a few pages are read a page at a time, on many a string at a time: the same
    /// entries, in the array's order (not the addresses'), either way; a string on a page that
    /// is not mapped stops both.
    #[test]
    fn heads_on_few_pages_or_many_read_the_same() {
        for pages in [1usize, 3, 16, 17, 40] {
            // SAFETY: fresh anonymous pages, `pages` of them plus one unmapped at once.
            let base = unsafe {
                let map = libc::mmap(
                    std::ptr::null_mut(),
                    (pages + 1) * 4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(map, libc::MAP_FAILED);
                libc::munmap(map.cast::<u8>().add(pages * 4096).cast(), 4096);
                map.cast::<u8>()
            };
            // SAFETY: the pages still mapped.
            let bytes = unsafe { std::slice::from_raw_parts_mut(base, pages * 4096) };
            let mut array = Vec::new();
            let mut want = Vec::new();
            // Three strings a page, placed from the last page down, so that the array's order
            // is not the addresses'.
            for page in (0..pages).rev() {
                for (k, at) in [100usize, 2000, 4040].into_iter().enumerate() {
                    let entry = if k == 1 {
                        format!("MEMLOCK_RUN_FLAGS=p{page}")
                    } else {
                        format!("X{page}_{k}=v")
                    };
                    let start = page * 4096 + at;
                    bytes[start..start + entry.len()].copy_from_slice(entry.as_bytes());
                    bytes[start + entry.len()] = 0;
                    array.push(base as u64 + start as u64);
                    if k == 1 {
                        want.push(entry.into_bytes());
                    }
                }
            }
            array.push(0);
            let mut entries = Entries::new(std::process::id() as i32, array.as_ptr() as u64, true);
            let got: Vec<Vec<u8>> = entries.by_ref().collect();
            assert_eq!((got, entries.stop), (want, None), "{pages} pages");
            // One pointer into the unmapped page: nothing judged.
            array.insert(1, base as u64 + (pages * 4096) as u64 + 8);
            let mut entries = Entries::new(std::process::id() as i32, array.as_ptr() as u64, true);
            assert_eq!(entries.by_ref().count(), 0, "{pages} pages");
            assert_eq!(entries.stop, Some(Stop::Unreadable), "{pages} pages");
            // SAFETY: the pages mapped above, no longer used.
            unsafe { libc::munmap(base.cast(), pages * 4096) };
        }
    }

    /// The heads of one batch are read a page at a time on at most 16 pages (each head from
    /// its own place, whatever the order of the array), and left to the read of a string at a
    /// time (false) on more.
    #[test]
    fn heads_are_read_a_page_at_a_time_on_sixteen_pages_at_most() {
        for pages in [1usize, 2, 16, 17] {
            let mut block = vec![0u8; (pages + 1) * 4096];
            let base = (block.as_ptr() as usize).next_multiple_of(4096);
            let offset = base - block.as_ptr() as usize;
            let mut pointers = Vec::new();
            let mut want = Vec::new();
            for page in (0..pages).rev() {
                for at in [8usize, 3000] {
                    let text = format!("P{page}_{at}=v\0");
                    let start = offset + page * 4096 + at;
                    block[start..start + text.len()].copy_from_slice(text.as_bytes());
                    pointers.push((base + page * 4096 + at) as u64);
                    want.push(text);
                }
            }
            let mut entries = Entries::new(std::process::id() as i32, 0, true);
            entries.heads = vec![[0u8; HEAD]; pointers.len()];
            entries.lens = pointers
                .iter()
                .map(|&at| (PAGE - at % PAGE).min(HEAD as u64) as usize)
                .collect();
            entries.pointers = pointers;
            let by_page = entries.read_heads_by_page();
            assert_eq!(by_page, pages <= 16, "{pages} pages");
            assert_eq!(entries.stop, None, "{pages} pages");
            if by_page {
                for (head, text) in entries.heads.iter().zip(&want) {
                    assert!(head.starts_with(text.as_bytes()), "{pages} pages: {text:?}");
                }
            }
        }
    }

    #[test]
    fn a_pointer_to_nothing_is_unreadable() {
        let array: [u64; 2] = [8, 0];
        let mut entries = Entries::new(std::process::id() as i32, array.as_ptr() as u64, true);
        assert_eq!(entries.next(), None);
        assert_eq!(entries.stop, Some(Stop::Unreadable));
    }
}

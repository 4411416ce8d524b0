//! The tar layer: POSIX ustar headers (with pax extended headers for long paths and huge
//! sizes), path rules, and a streaming parser that accepts only what a bundle may contain.

use super::ArchiveError;

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// The end-of-archive marker: two zero blocks.
pub const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Largest size that fits the 11 octal digits of a ustar size field.
const USTAR_MAX_SIZE: u64 = 0o777_7777_7777;

/// Largest pax extended header we accept, so a hostile header cannot exhaust memory.
const MAX_PAX_LEN: u64 = 64 * 1024;

/// Longest member path accepted.
pub const MAX_PATH_LEN: usize = 1024;

/// Bytes of zero padding after `size` bytes of member data.
pub fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Checks that `path` is a plain relative path that cannot escape the extraction root and can
/// be written on one line of `SHA256SUMS`.
pub fn check_path(path: &str) -> Result<(), ArchiveError> {
    let fail = |reason| {
        Err(ArchiveError::UnsafePath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return fail("empty path");
    }
    if path.len() > MAX_PATH_LEN {
        return fail("longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return fail("absolute path");
    }
    if path.chars().any(|c| c.is_control()) {
        return fail("contains a control character");
    }
    if path.contains('\\') {
        return fail("contains a backslash");
    }
    for component in path.split('/') {
        match component {
            "" => return fail("empty path component"),
            "." => return fail("contains a '.' component"),
            ".." => return fail("contains a '..' component"),
            _ => {}
        }
    }
    Ok(())
}

/// The header bytes (pax extended header when needed, then the ustar header) that precede a
/// regular-file member of `size` bytes at `path`.
pub fn member_header(path: &str, size: u64, mtime: u64) -> Result<Vec<u8>, ArchiveError> {
    check_path(path)?;
    let mut out = Vec::with_capacity(BLOCK);
    let needs_pax_path = path.len() > 100;
    let needs_pax_size = size > USTAR_MAX_SIZE;
    if needs_pax_path || needs_pax_size {
        let mut records = String::new();
        if needs_pax_path {
            records.push_str(&pax_record("path", path));
        }
        if needs_pax_size {
            records.push_str(&pax_record("size", &size.to_string()));
        }
        let pax_len = records.len() as u64;
        out.extend_from_slice(&ustar_block("PaxHeaders/member", pax_len, mtime, b'x'));
        out.extend_from_slice(records.as_bytes());
        out.resize(out.len() + padding(pax_len) as usize, 0);
    }
    let name = truncate_at_char_boundary(path, 100);
    let ustar_size = if needs_pax_size { 0 } else { size };
    out.extend_from_slice(&ustar_block(name, ustar_size, mtime, b'0'));
    Ok(out)
}

/// A tar stream written member by member (regular files, every header as [`member_header`]
/// makes it, and for image layers directories): how chart packages and image layers are
/// written, the same way the bundle's own members are.
pub struct TarWriter<W: std::io::Write> {
    out: W,
}

impl<W: std::io::Write> TarWriter<W> {
    /// A tar stream into `out`.
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Appends the member `path` of `size` bytes read from `data`, which must give exactly
    /// that many.
    pub fn append(
        &mut self,
        path: &str,
        size: u64,
        mtime: u64,
        data: &mut dyn std::io::Read,
    ) -> std::io::Result<()> {
        let header = member_header(path, size, mtime).map_err(std::io::Error::other)?;
        self.out.write_all(&header)?;
        let copied = std::io::copy(&mut std::io::Read::take(data, size), &mut self.out)?;
        if copied != size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{path}: {copied} bytes of {size}"),
            ));
        }
        self.out.write_all(&[0u8; BLOCK][..padding(size) as usize])
    }

    /// Appends the directory `path` (mode 0755, uid/gid 0), so an image layer sets its mode
    /// instead of leaving it to whoever unpacks the layer.
    pub fn append_dir(&mut self, path: &str, mtime: u64) -> std::io::Result<()> {
        let path = path.trim_end_matches('/');
        check_path(path).map_err(std::io::Error::other)?;
        if path.len() >= 100 {
            return Err(std::io::Error::other(format!(
                "{path}: directory name too long"
            )));
        }
        self.out
            .write_all(&ustar_block(&format!("{path}/"), 0, mtime, b'5'))
    }

    /// Writes the end-of-archive marker and hands back the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(&END_OF_ARCHIVE)?;
        Ok(self.out)
    }
}

/// Length of [`member_header`]'s output, without building it.
pub fn header_len(path: &str, size: u64) -> u64 {
    let mut records = 0u64;
    if path.len() > 100 {
        records += pax_record("path", path).len() as u64;
    }
    if size > USTAR_MAX_SIZE {
        records += pax_record("size", &size.to_string()).len() as u64;
    }
    let pax = if records > 0 {
        BLOCK as u64 + records + padding(records)
    } else {
        0
    };
    pax + BLOCK as u64
}

fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One pax record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(key: &str, value: &str) -> String {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n")
}

fn ustar_block(name: &str, size: u64, mtime: u64, typeflag: u8) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name.as_bytes());
    // Directories (only image layers write them) are 0755, everything else 0644.
    write_octal(
        &mut b[100..108],
        if typeflag == b'5' { 0o755 } else { 0o644 },
    );
    write_octal(&mut b[108..116], 0);
    write_octal(&mut b[116..124], 0);
    write_octal(&mut b[124..136], size);
    write_octal(&mut b[136..148], mtime.min(USTAR_MAX_SIZE));
    b[156] = typeflag;
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    write_octal(&mut b[329..337], 0);
    write_octal(&mut b[337..345], 0);
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let chk = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(chk.as_bytes());
    b
}

/// Writes `value` as zero-padded octal digits filling all but the last byte, which is NUL.
fn write_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = field
        .iter()
        .copied()
        .skip_while(|&c| c == b' ')
        .take_while(|&c| c != 0 && c != b' ')
        .collect::<Vec<u8>>();
    if text.is_empty() || field.first().is_some_and(|&c| c & 0x80 != 0) {
        return None;
    }
    let mut value: u64 = 0;
    for c in text {
        if !(b'0'..=b'7').contains(&c) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(value)
}

fn nul_terminated(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    &field[..end]
}

/// A parsed ustar header block.
struct RawHeader {
    name: String,
    size: u64,
    typeflag: u8,
}

fn parse_block(block: &[u8], offset: u64) -> Result<RawHeader, ArchiveError> {
    let fail = |reason: String| Err(ArchiveError::TarHeader { offset, reason });
    if &block[257..263] != b"ustar\0" || &block[263..265] != b"00" {
        return fail("not a POSIX ustar header (bad magic)".into());
    }
    let Some(stored) = parse_octal(&block[148..156]) else {
        return fail("unreadable checksum field".into());
    };
    let computed: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(x)
            }
        })
        .sum();
    if stored != computed {
        return fail(format!(
            "header checksum {stored:o} does not match the header ({computed:o})"
        ));
    }
    let Some(size) = parse_octal(&block[124..136]) else {
        return fail("unreadable size field".into());
    };
    let name = nul_terminated(&block[0..100]);
    let prefix = nul_terminated(&block[345..500]);
    let mut full = Vec::with_capacity(prefix.len() + 1 + name.len());
    if !prefix.is_empty() {
        full.extend_from_slice(prefix);
        full.push(b'/');
    }
    full.extend_from_slice(name);
    let Ok(name) = String::from_utf8(full) else {
        return fail("member name is not UTF-8".into());
    };
    Ok(RawHeader {
        name,
        size,
        typeflag: block[156],
    })
}

fn entry_kind(typeflag: u8) -> &'static str {
    match typeflag {
        b'1' => "hard link",
        b'2' => "symbolic link",
        b'3' => "character device",
        b'4' => "block device",
        b'5' => "directory",
        b'6' => "FIFO",
        b'7' => "contiguous file",
        b'g' => "global pax header",
        b'L' | b'K' => "GNU long-name entry",
        _ => "entry of unknown type",
    }
}

/// Overrides from a pax extended header, applied to the next member.
#[derive(Default)]
struct PaxOverrides {
    path: Option<String>,
    size: Option<u64>,
}

fn parse_pax(data: &[u8], offset: u64) -> Result<PaxOverrides, ArchiveError> {
    let fail = |reason: String| Err(ArchiveError::TarHeader { offset, reason });
    let mut rest = data;
    let mut out = PaxOverrides::default();
    while !rest.is_empty() {
        let Some(space) = rest.iter().position(|&c| c == b' ') else {
            return fail("malformed pax record".into());
        };
        let len = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok());
        let Some(len) = len.filter(|&l| l > space + 1 && l <= rest.len()) else {
            return fail("malformed pax record length".into());
        };
        let record = &rest[space + 1..len];
        rest = &rest[len..];
        let Some(record) = record.strip_suffix(b"\n") else {
            return fail("pax record without newline".into());
        };
        let Ok(record) = std::str::from_utf8(record) else {
            return fail("pax record is not UTF-8".into());
        };
        let Some((key, value)) = record.split_once('=') else {
            return fail("pax record without '='".into());
        };
        match key {
            "path" => out.path = Some(value.to_string()),
            "size" => match value.parse() {
                Ok(size) => out.size = Some(size),
                Err(_) => return fail(format!("bad pax size {value:?}")),
            },
            other => return fail(format!("unsupported pax key {other:?}")),
        }
    }
    Ok(out)
}

/// A regular-file member as announced by its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHeader {
    /// Path inside the archive.
    pub path: String,
    /// Size of the data in bytes.
    pub size: u64,
    /// Uncompressed offset of the member's first header byte.
    pub offset: u64,
    /// Uncompressed offset of the member's first data byte.
    pub data_offset: u64,
}

/// Receives the members of a tar stream as the [`Parser`] finds them.
pub trait Visitor {
    /// The visitor's error type; archive errors convert into it.
    type Error: From<ArchiveError>;
    /// A member starts; its data follows through [`Visitor::data`].
    fn member(&mut self, header: &MemberHeader) -> Result<(), Self::Error>;
    /// The next slice of the current member's data.
    fn data(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
    /// The current member's data is complete.
    fn member_end(&mut self) -> Result<(), Self::Error>;
}

enum State {
    /// Collecting a header block (`buf` holds what arrived so far).
    Header,
    /// Collecting pax extended header data (`remaining` bytes still to come, then padding).
    Pax { remaining: u64, padding: u64 },
    /// Passing member data through.
    Data { remaining: u64, padding: u64 },
    /// Consuming zero padding after the data.
    Padding { remaining: u64 },
    /// One zero block seen; the second must follow.
    FirstZeroBlock,
    /// End of archive reached; nothing may follow.
    Ended,
}

/// A streaming tar parser: feed it bytes in any slices, it calls the visitor per member and
/// rejects everything a bundle may not contain.
pub struct Parser {
    state: State,
    offset: u64,
    buf: Vec<u8>,
    pax: Option<PaxOverrides>,
    member_offset: u64,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser at the start of a tar stream.
    pub fn new() -> Self {
        Self::at(0)
    }

    /// A parser for a tar stream that starts at uncompressed `offset` (used for error messages
    /// and member offsets when parsing from the middle of an archive).
    pub fn at(offset: u64) -> Self {
        Parser {
            state: State::Header,
            offset,
            buf: Vec::with_capacity(BLOCK),
            pax: None,
            member_offset: offset,
        }
    }

    /// Whether the end-of-archive marker has been read.
    pub fn ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// Whether the parser stands between two members: the bytes so far ended a member (or
    /// nothing was fed yet), and the next block must be a header.
    pub fn between_members(&self) -> bool {
        matches!(self.state, State::Header) && self.buf.is_empty()
    }

    /// Uncompressed offset of the next byte the parser expects.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Feeds the next bytes of the stream.
    pub fn feed<V: Visitor>(&mut self, mut input: &[u8], visitor: &mut V) -> Result<(), V::Error> {
        while !input.is_empty() {
            match self.state {
                State::Header | State::FirstZeroBlock => {
                    let take = (BLOCK - self.buf.len()).min(input.len());
                    self.buf.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    self.offset += take as u64;
                    if self.buf.len() == BLOCK {
                        self.header_block(visitor)?;
                    }
                }
                State::Pax { remaining, padding } => {
                    let take = remaining.min(input.len() as u64) as usize;
                    self.buf.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    self.offset += take as u64;
                    let remaining = remaining - take as u64;
                    self.state = State::Pax { remaining, padding };
                    if remaining == 0 {
                        let pax_offset = self.offset - self.buf.len() as u64;
                        self.pax = Some(parse_pax(&self.buf, pax_offset)?);
                        self.buf.clear();
                        self.state = State::Padding { remaining: padding };
                        if padding == 0 {
                            self.state = State::Header;
                        }
                    }
                }
                State::Data { remaining, padding } => {
                    let take = remaining.min(input.len() as u64) as usize;
                    visitor.data(&input[..take])?;
                    input = &input[take..];
                    self.offset += take as u64;
                    let remaining = remaining - take as u64;
                    self.state = State::Data { remaining, padding };
                    if remaining == 0 {
                        visitor.member_end()?;
                        self.state = if padding == 0 {
                            State::Header
                        } else {
                            State::Padding { remaining: padding }
                        };
                    }
                }
                State::Padding { remaining } => {
                    let take = remaining.min(input.len() as u64) as usize;
                    if input[..take].iter().any(|&b| b != 0) {
                        return Err(ArchiveError::TarHeader {
                            offset: self.offset,
                            reason: "non-zero bytes in block padding".into(),
                        }
                        .into());
                    }
                    input = &input[take..];
                    self.offset += take as u64;
                    let remaining = remaining - take as u64;
                    self.state = if remaining == 0 {
                        State::Header
                    } else {
                        State::Padding { remaining }
                    };
                }
                State::Ended => {
                    return Err(ArchiveError::TarHeader {
                        offset: self.offset,
                        reason: "data after the end-of-archive marker".into(),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    fn header_block<V: Visitor>(&mut self, visitor: &mut V) -> Result<(), V::Error> {
        let block_offset = self.offset - BLOCK as u64;
        let zero = self.buf.iter().all(|&b| b == 0);
        if let State::FirstZeroBlock = self.state {
            self.buf.clear();
            if !zero {
                return Err(ArchiveError::TarHeader {
                    offset: block_offset,
                    reason: "a lone zero block inside the archive".into(),
                }
                .into());
            }
            self.state = State::Ended;
            return Ok(());
        }
        if zero {
            if self.pax.is_some() {
                return Err(ArchiveError::TarHeader {
                    offset: block_offset,
                    reason: "pax header not followed by a member".into(),
                }
                .into());
            }
            self.buf.clear();
            self.state = State::FirstZeroBlock;
            return Ok(());
        }
        if self.pax.is_none() {
            self.member_offset = block_offset;
        }
        let raw = parse_block(&self.buf, block_offset)?;
        self.buf.clear();
        match raw.typeflag {
            b'x' => {
                if self.pax.is_some() {
                    return Err(ArchiveError::TarHeader {
                        offset: block_offset,
                        reason: "two pax headers in a row".into(),
                    }
                    .into());
                }
                if raw.size == 0 || raw.size > MAX_PAX_LEN {
                    return Err(ArchiveError::TarHeader {
                        offset: block_offset,
                        reason: format!("pax header of {} bytes", raw.size),
                    }
                    .into());
                }
                self.state = State::Pax {
                    remaining: raw.size,
                    padding: padding(raw.size),
                };
                Ok(())
            }
            b'0' | 0 => {
                let pax = self.pax.take().unwrap_or_default();
                let path = pax.path.unwrap_or(raw.name);
                let size = pax.size.unwrap_or(raw.size);
                check_path(&path)?;
                let header = MemberHeader {
                    path,
                    size,
                    offset: self.member_offset,
                    data_offset: self.offset,
                };
                visitor.member(&header)?;
                if size == 0 {
                    visitor.member_end()?;
                    self.state = State::Header;
                } else {
                    self.state = State::Data {
                        remaining: size,
                        padding: padding(size),
                    };
                }
                Ok(())
            }
            other => Err(ArchiveError::NotRegularFile {
                path: raw.name,
                kind: entry_kind(other),
            }
            .into()),
        }
    }

    /// Declares the end of input: fails unless the end-of-archive marker was read.
    pub fn finish(&self) -> Result<(), ArchiveError> {
        match self.state {
            State::Ended => Ok(()),
            State::Data { remaining, .. } => Err(ArchiveError::Truncated(format!(
                "stream ends {remaining} bytes before the end of the current member"
            ))),
            _ => Err(ArchiveError::Truncated(format!(
                "no end-of-archive marker (stream ends at offset {})",
                self.offset
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        members: Vec<(MemberHeader, Vec<u8>)>,
    }

    impl Visitor for Collect {
        type Error = ArchiveError;
        fn member(&mut self, header: &MemberHeader) -> Result<(), ArchiveError> {
            self.members.push((header.clone(), Vec::new()));
            Ok(())
        }
        fn data(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
            if let Some(last) = self.members.last_mut() {
                last.1.extend_from_slice(bytes);
            }
            Ok(())
        }
        fn member_end(&mut self) -> Result<(), ArchiveError> {
            Ok(())
        }
    }

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, data) in members {
            out.extend(member_header(path, data.len() as u64, 7).unwrap());
            out.extend_from_slice(data);
            out.resize(out.len() + padding(data.len() as u64) as usize, 0);
        }
        out.extend_from_slice(&END_OF_ARCHIVE);
        out
    }

    fn parse_in_slices(bytes: &[u8], slice: usize) -> Result<Collect, ArchiveError> {
        let mut parser = Parser::new();
        let mut collect = Collect::default();
        for chunk in bytes.chunks(slice) {
            parser.feed(chunk, &mut collect)?;
        }
        parser.finish()?;
        Ok(collect)
    }

    #[test]
    fn long_paths_and_empty_members_round_trip_in_any_slicing() {
        let long = format!("{}/file.txt", "d".repeat(150));
        let bytes = archive(&[("a", b"hello"), (&long, b""), ("b/c", &[9u8; 1500])]);
        for slice in [1, 7, 512, 4096] {
            let got = parse_in_slices(&bytes, slice).unwrap();
            let paths: Vec<_> = got.members.iter().map(|m| m.0.path.as_str()).collect();
            assert_eq!(paths, ["a", long.as_str(), "b/c"]);
            assert_eq!(got.members[0].1, b"hello");
            assert_eq!(got.members[2].1, vec![9u8; 1500]);
            assert_eq!(got.members[1].0.data_offset - got.members[1].0.offset, 1536);
        }
        assert_eq!(header_len(&long, 0), 1536);
    }

    #[test]
    fn pax_length_counts_its_own_digits() {
        for n in [1usize, 85, 86, 87, 990, 995, 998, 1000] {
            let rec = pax_record("path", &"x".repeat(n));
            let (len, _) = rec.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), rec.len());
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "./a",
            "a/",
            "",
            "a\nb",
            "a\\b",
        ] {
            assert!(
                matches!(check_path(bad), Err(ArchiveError::UnsafePath { .. })),
                "{bad:?} accepted"
            );
        }
        check_path("blobs/sha256/abc").unwrap();
    }

    #[test]
    fn a_symlink_entry_is_refused_by_kind() {
        let mut bytes = archive(&[("link", b"")]);
        bytes[156] = b'2';
        fix_checksum(&mut bytes[..BLOCK]);
        match parse_in_slices(&bytes, 512) {
            Err(ArchiveError::NotRegularFile { path, kind }) => {
                assert_eq!(path, "link");
                assert_eq!(kind, "symbolic link");
            }
            other => panic!("unexpected {:?}", other.map(|c| c.members)),
        }
    }

    #[test]
    fn a_corrupted_header_fails_its_checksum() {
        let mut bytes = archive(&[("file", b"x")]);
        bytes[3] ^= 1;
        let err = parse_in_slices(&bytes, 512).err().unwrap();
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn missing_end_marker_is_truncation() {
        let bytes = archive(&[("file", b"x")]);
        let err = parse_in_slices(&bytes[..bytes.len() - 1024], 512)
            .err()
            .unwrap();
        assert!(matches!(err, ArchiveError::Truncated(_)), "{err}");
    }

    pub(crate) fn fix_checksum(block: &mut [u8]) {
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&x| u32::from(x)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }
}

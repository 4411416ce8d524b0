//! Round-trip properties of the archive layer: whatever members are written, reading the frames
//! back gives the same members, frames start at member boundaries, random reads match the tar
//! stream, and the output does not depend on the number of threads.

use super::reader::Archive;
use super::tar::{MemberHeader, Parser, Visitor};
use super::writer::{Member, Writer, WriterOptions};
use super::ArchiveError;
use proptest::prelude::*;

#[derive(Default)]
struct Collect(Vec<(MemberHeader, Vec<u8>)>);

impl Visitor for Collect {
    type Error = ArchiveError;
    fn member(&mut self, header: &MemberHeader) -> Result<(), ArchiveError> {
        self.0.push((header.clone(), Vec::new()));
        Ok(())
    }
    fn data(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        if let Some(last) = self.0.last_mut() {
            last.1.extend_from_slice(bytes);
        }
        Ok(())
    }
    fn member_end(&mut self) -> Result<(), ArchiveError> {
        Ok(())
    }
}

fn write(members: &[(String, Vec<u8>)], threads: usize) -> Vec<u8> {
    let options = WriterOptions {
        threads,
        frame_size: 4096,
        mtime: 1_700_000_000,
        ..WriterOptions::default()
    };
    let mut writer = Writer::new(Vec::new(), options);
    let list = members
        .iter()
        .map(|(p, d)| Member::bytes(p.clone(), d.clone()));
    writer.write_members(list, &mut |_, _| {}).unwrap();
    writer.finish().unwrap().0
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9_.-]{1,40}", 1..5)
        .prop_map(|parts| parts.join("/"))
        .prop_filter("no dot components", |p| {
            p.split('/').all(|c| c != "." && c != "..")
        })
}

fn members_strategy() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec(
        (
            path_strategy(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..700),
                (0usize..20_000).prop_map(|n| (0..n).map(|i| (i % 251) as u8).collect()),
            ],
        ),
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn members_round_trip_through_frames(members in members_strategy(), threads in 1usize..4) {
        let file = write(&members, threads);
        let archive = Archive::open(file.clone()).unwrap();
        let mut parser = Parser::new();
        let mut got = Collect::default();
        let mut stream = Vec::new();
        archive
            .for_each_frame(0..archive.table().frames().len(), threads, |_, data| {
                let data = data?;
                stream.extend_from_slice(&data);
                parser.feed(&data, &mut got)
            })
            .unwrap();
        parser.finish().unwrap();
        prop_assert_eq!(got.0.len(), members.len());
        for ((header, data), (path, expected)) in got.0.iter().zip(&members) {
            prop_assert_eq!(&header.path, path);
            prop_assert_eq!(data, expected);
            // Every member starts a frame.
            let frame = archive.table().frame_at(header.offset).unwrap();
            prop_assert_eq!(archive.table().frames()[frame].data_offset, header.offset);
            let again = archive.header_at(header.offset).unwrap();
            prop_assert_eq!(again.as_ref(), Some(header));
        }
        // A range reader agrees with the stream, across frames.
        let from = stream.len() / 5;
        let len = 9000.min(stream.len() - from);
        let mut via_reader = Vec::new();
        let mut reader = archive.range_reader(from as u64, len as u64);
        std::io::Read::read_to_end(&mut reader, &mut via_reader).unwrap();
        prop_assert_eq!(&via_reader[..], &stream[from..from + len]);
        // Random access agrees with the stream.
        for (start, len) in [(0usize, 10usize), (stream.len() / 3, 5000), (stream.len().saturating_sub(700), 700)] {
            let len = len.min(stream.len() - start);
            let mut buf = vec![0u8; len];
            archive.read_at(start as u64, &mut buf).unwrap();
            prop_assert_eq!(&buf[..], &stream[start..start + len]);
        }
        // The output does not depend on the thread count.
        prop_assert_eq!(write(&members, 1), file);
    }
}

#[test]
fn a_source_that_shrinks_is_an_error_naming_the_member() {
    let mut writer = Writer::new(Vec::new(), WriterOptions::default());
    let member = Member {
        path: "a".into(),
        size: 10,
        content: super::writer::Content::Bytes(vec![1; 5]),
    };
    match writer.write_members([member], &mut |_, _| {}) {
        Err(ArchiveError::SourceSize {
            path,
            expected,
            actual,
        }) => {
            assert_eq!(path, "a");
            assert_eq!((expected, actual), (10, 5));
        }
        other => panic!("{other:?}"),
    }
}

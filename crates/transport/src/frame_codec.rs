//! Frames: a 4-byte big-endian length, then one msgpack value.
//!
//! `tokio_util`'s length-delimited codec does the framing and enforces the
//! maximum frame size *before* buffering a frame's body, so an oversized length
//! prefix costs nothing and fails at once.

use crate::errors::CodecError;
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// Decodes frames into `In` and encodes `Out` into frames.
pub struct MsgpackCodec<In, Out> {
    frames: LengthDelimitedCodec,
    max_frame_bytes: usize,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> MsgpackCodec<In, Out> {
    /// A codec refusing frames longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        let frames = LengthDelimitedCodec::builder()
            .max_frame_length(max_frame_bytes)
            .new_codec();
        MsgpackCodec {
            frames,
            max_frame_bytes,
            _types: PhantomData,
        }
    }
}

impl<In: DeserializeOwned, Out> Decoder for MsgpackCodec<In, Out> {
    type Item = In;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, CodecError> {
        match self.frames.decode(src) {
            Ok(Some(frame)) => Ok(Some(rmp_serde::from_slice(&frame)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(CodecError::Frame(e)),
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for MsgpackCodec<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), CodecError> {
        let body = rmp_serde::to_vec(&item)?;
        if body.len() > self.max_frame_bytes {
            return Err(CodecError::Oversized {
                bytes: body.len(),
                limit: self.max_frame_bytes,
            });
        }
        self.frames
            .encode(Bytes::from(body), dst)
            .map_err(CodecError::Frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_round_trips_through_a_frame() {
        let mut codec: MsgpackCodec<Vec<String>, Vec<String>> = MsgpackCodec::new(1024);
        let mut buf = BytesMut::new();
        let value = vec!["a".to_string(), "bc".to_string()];
        codec.encode(value.clone(), &mut buf).expect("encode");
        assert_eq!(codec.decode(&mut buf).expect("decode"), Some(value));
    }

    #[test]
    fn an_oversized_length_prefix_is_refused_before_buffering() {
        let mut codec: MsgpackCodec<u8, u8> = MsgpackCodec::new(16);
        let mut buf = BytesMut::from(&[0u8, 0, 1, 0][..]); // claims 256 bytes
        assert!(matches!(codec.decode(&mut buf), Err(CodecError::Frame(_))));
    }

    #[test]
    fn an_oversized_value_is_refused_with_its_size_and_nothing_is_written() {
        let mut codec: MsgpackCodec<String, String> = MsgpackCodec::new(16);
        let mut buf = BytesMut::new();
        let refused = codec.encode("x".repeat(100), &mut buf);
        assert!(matches!(
            refused,
            Err(CodecError::Oversized { limit: 16, .. })
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn garbage_inside_a_valid_frame_is_a_decode_error() {
        let mut codec: MsgpackCodec<(u64, String), u8> = MsgpackCodec::new(1024);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 0xc1, 0xc1, 0xc1][..]);
        assert!(matches!(codec.decode(&mut buf), Err(CodecError::Decode(_))));
    }

    #[test]
    fn a_partial_frame_waits_for_more_bytes() {
        let mut codec: MsgpackCodec<u8, u8> = MsgpackCodec::new(1024);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 1][..]);
        assert_eq!(codec.decode(&mut buf).expect("no error yet"), None);
    }
}

//! Sequences a client frame may hold, bounded in count while decoding.
//!
//! A frame's byte limit does not bound what decoding it builds: 16 MiB of
//! tiny calls are ~1.9 million `CallRequest`s (~260 MB and ~0.45 s to
//! build), and 16 MiB of `done` ranges 5.6 million pairs. A sequence longer
//! than its bound is refused as soon as its length is read (msgpack states
//! it up front), before anything is built; the client never sends one.

use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// Decodes a sequence of at most `max` elements, refusing a longer one
/// before building any element if its length is stated, else at element
/// `max + 1`.
pub fn deserialize<'de, D, T>(d: D, max: usize) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_seq(AtMost {
        max,
        element: PhantomData,
    })
}

struct AtMost<T> {
    max: usize,
    element: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for AtMost<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a sequence of at most {} elements", self.max)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let stated = seq.size_hint().unwrap_or(0);
        if stated > self.max {
            return Err(A::Error::invalid_length(stated, &self));
        }
        let mut out = Vec::with_capacity(stated);
        while let Some(element) = seq.next_element()? {
            if out.len() == self.max {
                return Err(A::Error::invalid_length(self.max + 1, &self));
            }
            out.push(element);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Three(#[serde(deserialize_with = "three")] Vec<u32>);

    fn three<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        deserialize(d, 3)
    }

    fn decode(items: &[u32]) -> Result<Vec<u32>, rmp_serde::decode::Error> {
        let bytes = rmp_serde::to_vec(items).expect("encode");
        rmp_serde::from_slice::<Three>(&bytes).map(|t| t.0)
    }

    #[test]
    fn a_sequence_within_its_bound_decodes() {
        assert_eq!(decode(&[1, 2, 3]).expect("three"), vec![1, 2, 3]);
        assert_eq!(decode(&[]).expect("none"), Vec::<u32>::new());
    }

    #[test]
    fn a_longer_sequence_is_refused_with_its_length() {
        let e = decode(&[1, 2, 3, 4]).expect_err("four");
        assert!(e.to_string().contains("at most 3"), "{e}");
    }

    /// An array header stating 4 billion elements, then nothing: refused
    /// from the header alone (no element is read, nothing is allocated).
    #[test]
    fn a_stated_length_above_the_bound_is_refused_before_any_element() {
        let mut bytes = vec![0xdd];
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        let e = rmp_serde::from_slice::<Three>(&bytes).expect_err("too long");
        assert!(e.to_string().contains("4294967295"), "{e}");
    }
}

//! Closed sets of ECS words (states, codes) as enums: one spelling per value, for the wire, the CRD
//! schema's `enum:` and the text the operator prints.

/// An enum of ECS words: each variant is serialized as its word, exactly as ECS spells it, and gets
/// `as_str`, `Display`, `parse` and `ALL`.
///
/// A stored status with a word outside the set (written by a newer operator, read after a
/// downgrade) does not decode: the watch turns that object into an `InvalidObject` condition and
/// leaves it alone until the value is fixed (src/controller/decode.rs); other objects go on.
macro_rules! ecs_words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            serde::Serialize,
            serde::Deserialize,
            Clone,
            Copy,
            Debug,
            PartialEq,
            Eq,
            Hash,
            schemars::JsonSchema,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($word),+].len()] = [$($name::$variant),+];

            /// The ECS word.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            /// From the ECS word.
            pub fn parse(word: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == word)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use ecs_words;

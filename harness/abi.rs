//! The C ABI shared with every kernel implementation (kernels/kpilot_abi.h), as bindgen sees it,
//! plus compile-time proof that Rust and the C compiler agree on its layout.

#![allow(non_camel_case_types, non_upper_case_globals, dead_code)]

include!(concat!(env!("OUT_DIR"), "/abi_bindings.rs"));

mod c_layout {
    include!(concat!(env!("OUT_DIR"), "/abi_layout.rs"));
}

macro_rules! same_field {
    ($t:ty, $f:ident, $c:expr) => {
        const _: () = assert!(
            std::mem::offset_of!($t, $f) == $c.0,
            concat!(
                "offset of ",
                stringify!($t),
                ".",
                stringify!($f),
                " differs between Rust and C"
            )
        );
    };
}
const _: () = assert!(
    std::mem::size_of::<kp_tensor>() == c_layout::SIZEOF_KP_TENSOR,
    "kp_tensor size differs between Rust and C"
);
const _: () = assert!(
    std::mem::size_of::<kp_call>() == c_layout::SIZEOF_KP_CALL,
    "kp_call size differs between Rust and C"
);
const _: () = assert!(
    std::mem::align_of::<kp_call>() == c_layout::ALIGNOF_KP_CALL,
    "kp_call alignment differs between Rust and C"
);
same_field!(kp_tensor, data, c_layout::kp_tensor_data);
same_field!(kp_tensor, dtype, c_layout::kp_tensor_dtype);
same_field!(kp_tensor, rank, c_layout::kp_tensor_rank);
same_field!(kp_tensor, shape, c_layout::kp_tensor_shape);
same_field!(kp_tensor, stride, c_layout::kp_tensor_stride);
same_field!(kp_call, abi_version, c_layout::kp_call_abi_version);
same_field!(kp_call, n_tensors, c_layout::kp_call_n_tensors);
same_field!(kp_call, n_scalars, c_layout::kp_call_n_scalars);
same_field!(kp_call, reserved, c_layout::kp_call_reserved);
same_field!(kp_call, tensors, c_layout::kp_call_tensors);
same_field!(kp_call, scalars, c_layout::kp_call_scalars);
same_field!(kp_call, path, c_layout::kp_call_path);

/// What an entry point's return code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    NotSupported,
    Invalid,
    CudaError,
    Unknown(i32),
}

impl Status {
    pub fn from_code(code: i32) -> Status {
        match code as u32 {
            KP_OK => Status::Ok,
            KP_NOT_SUPPORTED => Status::NotSupported,
            KP_INVALID => Status::Invalid,
            KP_CUDA_ERROR => Status::CudaError,
            _ => Status::Unknown(code),
        }
    }
}

impl kp_call {
    /// The dispatch path the implementation wrote, up to the first NUL.
    pub fn path_str(&self) -> String {
        let bytes: Vec<u8> = self
            .path
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_stops_at_nul_and_tolerates_a_full_buffer() {
        let mut call = kp_call::default();
        for (i, b) in b"tile\0junk".iter().enumerate() {
            call.path[i] = *b as _;
        }
        assert_eq!(call.path_str(), "tile");
        for c in call.path.iter_mut() {
            *c = b'a' as _;
        }
        assert_eq!(call.path_str().len(), KP_PATH_LEN as usize);
    }

    #[test]
    fn status_codes_map_one_to_one() {
        assert_eq!(Status::from_code(0), Status::Ok);
        assert_eq!(Status::from_code(1), Status::NotSupported);
        assert_eq!(Status::from_code(2), Status::Invalid);
        assert_eq!(Status::from_code(3), Status::CudaError);
        assert_eq!(Status::from_code(77), Status::Unknown(77));
    }
}

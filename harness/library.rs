//! Kernel implementations and the harness's support kernels, loaded from nvcc-built shared
//! objects with dlopen. Both sides are called through the same function-pointer type, from the
//! same code, with the same descriptors: there is one host call path.

use crate::abi::{kp_call, kp_entry_fn};
use crate::error::{Error, Result};
use std::ffi::c_void;
use std::path::Path;

/// The stream a call launches on: an opaque CUDA handle, passed through to C and never
/// dereferenced on the Rust side.
#[derive(Debug, Clone, Copy)]
pub struct Stream(pub *mut c_void);

pub struct Implementation {
    _lib: libloading::Library,
    /// One per task entry, in task.toml order.
    entries: Vec<unsafe extern "C" fn(*mut kp_call, *mut c_void) -> i32>,
    pub side: &'static str,
}

fn open(so: &Path) -> Result<libloading::Library> {
    // SAFETY: loading a library runs its initializers; these are our own nvcc builds.
    unsafe { libloading::Library::new(so) }
        .map_err(|e| Error::Internal(format!("cannot load {}: {e}", so.display())))
}

impl Implementation {
    pub fn load(so: &Path, entry_names: &[String], side: &'static str) -> Result<Implementation> {
        let lib = open(so)?;
        let mut entries = Vec::new();
        for name in entry_names {
            let sym = format!("kp_{name}");
            // SAFETY: the symbol's type is fixed by kernels/kpilot_abi.h (kp_entry_fn).
            let f: kp_entry_fn = unsafe {
                *lib.get::<kp_entry_fn>(sym.as_bytes()).map_err(|_| {
                    Error::Usage(format!("the {side} ({}) does not export `{sym}`: every implementation must export kp_<entry> for each entry in task.toml", so.display()))
                })?
            };
            entries.push(f.ok_or_else(|| Error::Internal(format!("{sym} is null")))?);
        }
        Ok(Implementation {
            _lib: lib,
            entries,
            side,
        })
    }

    /// Calls entry `entry` with the descriptor and stream; returns the raw status code.
    #[inline]
    pub fn call(&self, entry: usize, call: &mut kp_call, stream: Stream) -> i32 {
        // SAFETY: the descriptor is valid for the call; the implementation owns its launches.
        unsafe { (self.entries[entry])(call, stream.0) }
    }
}

type FillRandom = unsafe extern "C" fn(
    *mut c_void,
    i32,
    u64,
    u64,
    u32,
    i32,
    f64,
    f64,
    f64,
    f64,
    *mut c_void,
) -> i32;
type FillPattern = unsafe extern "C" fn(*mut c_void, u64, u32, *mut c_void) -> i32;
type Checksum = unsafe extern "C" fn(*const c_void, u64, *mut u64, *mut c_void) -> i32;
type Batch =
    unsafe extern "C" fn(*const KpsRange, u32, u64, u32, *mut u64, *mut u8, *mut c_void) -> i32;

/// One range of `kps_batch` (kernels/kpilot_support.cu has the meaning of each field per kind).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct KpsRange {
    pub ptr: u64,
    pub n: u64,
    pub aux: u64,
    pub slot: u64,
    pub kind: u32,
    pub elem_size: u32,
}

/// One region of `kps_stream`: `n_vec` 16-byte vectors from `ptr` (16-byte aligned).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct KpsStreamRegion {
    pub ptr: u64,
    pub n_vec: u64,
    pub read: u32,
    pub write: u32,
}

/// The most regions one `kps_stream` launch takes (KPS_STREAM_MAX_REGIONS).
pub const KPS_STREAM_MAX_REGIONS: usize = 16;

type StreamFn = unsafe extern "C" fn(*const KpsStreamRegion, u32, *mut c_void) -> i32;

pub const KPS_SCAN: u32 = 0;
pub const KPS_NOT_BYTE: u32 = 1;
pub const KPS_CHECKSUM: u32 = 2;
pub const KPS_GATHER: u32 = 3;

/// kernels/kpilot_support.cu: seeded fills, poison/guard patterns, checksums.
pub struct Support {
    _lib: libloading::Library,
    fill_random: FillRandom,
    fill_pattern: FillPattern,
    checksum: Checksum,
    batch: Batch,
    stream: StreamFn,
}

impl Support {
    pub fn load(so: &Path) -> Result<Support> {
        let lib = open(so)?;
        // SAFETY: signatures fixed by kernels/kpilot_support.cu.
        unsafe {
            let fill_random = *lib
                .get::<FillRandom>(b"kps_fill_random")
                .map_err(|e| Error::Internal(format!("support: {e}")))?;
            let fill_pattern = *lib
                .get::<FillPattern>(b"kps_fill_pattern")
                .map_err(|e| Error::Internal(format!("support: {e}")))?;
            let checksum = *lib
                .get::<Checksum>(b"kps_checksum")
                .map_err(|e| Error::Internal(format!("support: {e}")))?;
            let batch = *lib
                .get::<Batch>(b"kps_batch")
                .map_err(|e| Error::Internal(format!("support: {e}")))?;
            let stream = *lib
                .get::<StreamFn>(b"kps_stream")
                .map_err(|e| Error::Internal(format!("support: {e}")))?;
            Ok(Support {
                _lib: lib,
                fill_random,
                fill_pattern,
                checksum,
                batch,
                stream,
            })
        }
    }

    fn ok(what: &str, code: i32) -> Result<()> {
        if code == 0 {
            Ok(())
        } else {
            Err(Error::Cuda(format!(
                "support kernel {what} failed (code {code})"
            )))
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn fill_random(
        &self,
        ptr: u64,
        dtype: i32,
        n: u64,
        seed: u64,
        tensor: u32,
        dist: (i32, [f64; 4]),
        stream: Stream,
    ) -> Result<()> {
        // SAFETY: ptr is a live device range of n elements of dtype.
        Self::ok("kps_fill_random", unsafe {
            (self.fill_random)(
                ptr as *mut c_void,
                dtype,
                n,
                seed,
                tensor,
                dist.0,
                dist.1[0],
                dist.1[1],
                dist.1[2],
                dist.1[3],
                stream.0,
            )
        })
    }

    pub fn fill_pattern(&self, ptr: u64, bytes: u64, pattern: u32, stream: Stream) -> Result<()> {
        // SAFETY: ptr is a live device range of `bytes` bytes.
        Self::ok("kps_fill_pattern", unsafe {
            (self.fill_pattern)(ptr as *mut c_void, bytes, pattern, stream.0)
        })
    }

    /// Adds the checksum of the range into the device u64 at `out`.
    pub fn checksum(&self, ptr: u64, bytes: u64, out: u64, stream: Stream) -> Result<()> {
        // SAFETY: ptr is a live device range; out a live device u64.
        Self::ok("kps_checksum", unsafe {
            (self.checksum)(ptr as *const c_void, bytes, out as *mut u64, stream.0)
        })
    }

    /// Runs `n_ranges` ranges (a device array of KpsRange) in one launch; results go to the u64
    /// array `out`, gathered bytes to `gather` (0 when there are none).
    #[allow(clippy::too_many_arguments)]
    pub fn batch(
        &self,
        ranges: u64,
        n_ranges: u32,
        max_range_bytes: u64,
        pattern: u32,
        out: u64,
        gather: u64,
        stream: Stream,
    ) -> Result<()> {
        // SAFETY: ranges holds n_ranges descriptors of live device ranges; out and gather are
        // live device buffers covering every slot and gather offset they name.
        Self::ok("kps_batch", unsafe {
            (self.batch)(
                ranges as *const KpsRange,
                n_ranges,
                max_range_bytes,
                pattern,
                out as *mut u64,
                gather as *mut u8,
                stream.0,
            )
        })
    }

    /// One launch of the stream reference: every region's vectors read and/or written once
    /// (kernels/README.md, `kps_stream`). `regions` lives on the host.
    pub fn stream(&self, regions: &[KpsStreamRegion], stream: Stream) -> Result<()> {
        if regions.len() > KPS_STREAM_MAX_REGIONS {
            return Err(Error::Internal(format!(
                "kps_stream takes at most {KPS_STREAM_MAX_REGIONS} regions, got {}",
                regions.len()
            )));
        }
        // SAFETY: every region is a live, 16-byte aligned device range of n_vec vectors; the
        // descriptors are read on the host before the call returns.
        Self::ok("kps_stream", unsafe {
            (self.stream)(regions.as_ptr(), regions.len() as u32, stream.0)
        })
    }
}

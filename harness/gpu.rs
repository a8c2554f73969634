//! Thin, checked wrappers over the CUDA driver API (through cudarc): one context, one
//! non-default stream, device buffers, pinned staging, events and graphs. Every call's result is
//! checked and turned into `Error::Cuda` with the call named.

use crate::error::{Error, Result};
use cudarc::driver::{result, sys};
use std::ffi::c_void;

fn ck<T>(what: &str, r: std::result::Result<T, result::DriverError>) -> Result<T> {
    r.map_err(|e| {
        let name = e
            .error_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|_| format!("{:?}", e.0));
        Error::Cuda(format!("{what} failed: {name}"))
    })
}

/// Facts about the device, recorded in every ledger line.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    pub name: String,
    pub uuid: String,
    pub compute_capability: (i32, i32),
    pub sm_count: i32,
    pub l2_bytes: i64,
    pub total_mem_bytes: u64,
    pub driver_version: String,
    /// Max SM and memory clocks the driver reports, kHz (None where the driver no longer reports them).
    pub sm_clock_khz: Option<i32>,
    pub mem_clock_khz: Option<i32>,
    /// `nvidia-smi` clocks and state at the start of the run, if nvidia-smi is present.
    pub smi: Option<String>,
}

pub struct Gpu {
    pub dev: sys::CUdevice,
    pub ctx: sys::CUcontext,
    pub stream: sys::CUstream,
    pub info: DeviceInfo,
}

impl Gpu {
    /// Opens device `ordinal`'s primary context (the one the CUDA runtime inside the kernel
    /// libraries also uses) and creates one non-blocking stream.
    pub fn open(ordinal: i32) -> Result<Gpu> {
        // SAFETY: only probes whether the driver library can be loaded.
        if !unsafe { sys::is_culib_present() } {
            return Err(Error::Environment(
                "no CUDA driver: libcuda.so could not be loaded. kpilot runs kernels on an NVIDIA GPU with its driver installed; \
                 on a machine without one, `cargo test` still checks everything that needs no GPU"
                    .into(),
            ));
        }
        // nvidia-smi starts NVML before it answers (tens to hundreds of ms): it runs while the driver starts
        // and the context is created, and is read at the end (still the state at the start).
        let smi = std::thread::spawn(move || smi_query(ordinal));
        ck("cuInit", result::init())?;
        let count = ck("cuDeviceGetCount", result::device::get_count())?;
        if count == 0 {
            return Err(Error::Environment(
                "the CUDA driver is present but reports no GPU".into(),
            ));
        }
        if ordinal >= count {
            return Err(Error::Usage(format!(
                "--device {ordinal} but this machine has {count} GPU(s)"
            )));
        }
        let dev = ck("cuDeviceGet", result::device::get(ordinal))?;
        // SAFETY: dev is a valid device handle.
        let ctx = unsafe { ck("cuDevicePrimaryCtxRetain", result::primary_ctx::retain(dev))? };
        // SAFETY: ctx was just retained.
        unsafe { ck("cuCtxSetCurrent", result::ctx::set_current(ctx))? };
        let stream = ck(
            "cuStreamCreate",
            result::stream::create(result::stream::StreamKind::NonBlocking),
        )?;
        let attr = |a: sys::CUdevice_attribute| -> Option<i32> {
            // SAFETY: valid device; unknown attributes return an error, mapped to None.
            unsafe { result::device::get_attribute(dev, a).ok() }
        };
        let uuid = ck("cuDeviceGetUuid", result::device::get_uuid(dev))?;
        let uuid_hex: String = uuid
            .bytes
            .iter()
            .map(|b| format!("{:02x}", *b as u8))
            .collect();
        let mut drv = 0i32;
        // SAFETY: writes one int.
        unsafe { sys::cuDriverGetVersion(&mut drv) };
        let info = DeviceInfo {
            name: ck("cuDeviceGetName", result::device::get_name(dev))?,
            uuid: format!(
                "GPU-{}-{}-{}-{}-{}",
                &uuid_hex[0..8],
                &uuid_hex[8..12],
                &uuid_hex[12..16],
                &uuid_hex[16..20],
                &uuid_hex[20..32]
            ),
            compute_capability: (
                attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
                    .unwrap_or(0),
                attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
                    .unwrap_or(0),
            ),
            sm_count: attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
                .unwrap_or(0),
            l2_bytes: attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE).unwrap_or(0)
                as i64,
            // SAFETY: valid device.
            total_mem_bytes: unsafe { ck("cuDeviceTotalMem", result::device::total_mem(dev))? }
                as u64,
            driver_version: format!("{}.{}", drv / 1000, (drv % 1000) / 10),
            sm_clock_khz: attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CLOCK_RATE),
            mem_clock_khz: attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE),
            smi: smi.join().ok().flatten(),
        };
        Ok(Gpu {
            dev,
            ctx,
            stream,
            info,
        })
    }

    pub fn sync(&self) -> Result<()> {
        // SAFETY: our stream.
        unsafe {
            ck(
                "cuStreamSynchronize",
                result::stream::synchronize(self.stream),
            )
        }
    }

    /// Waits until everything queued in the context has finished, on any stream (work a kernel
    /// library launched elsewhere included); returns the seconds waited, by the host clock.
    pub fn drain(&self) -> Result<f64> {
        let t0 = std::time::Instant::now();
        ck("cuCtxSynchronize", result::ctx::synchronize())?;
        Ok(t0.elapsed().as_secs_f64())
    }

    pub fn free_mem(&self) -> Result<u64> {
        ck("cuMemGetInfo", result::mem_get_info()).map(|(free, _)| free as u64)
    }

    pub fn alloc(&self, bytes: usize) -> Result<DeviceBuffer> {
        // SAFETY: plain allocation in the current context.
        let ptr = unsafe {
            ck(
                &format!("cuMemAlloc({bytes} bytes)"),
                result::malloc_sync(bytes.max(1)),
            )?
        };
        Ok(DeviceBuffer { ptr, bytes })
    }

    /// Copies `dst.len()` bytes from device address `src` (synchronously, on our stream).
    pub fn download(&self, src: sys::CUdeviceptr, dst: &mut [u8]) -> Result<()> {
        // SAFETY: caller passes a live device range of at least dst.len() bytes.
        unsafe {
            ck(
                "cuMemcpyDtoHAsync",
                result::memcpy_dtoh_async(dst, src, self.stream),
            )?;
        }
        self.sync()
    }

    pub fn upload(&self, src: &[u8], dst: sys::CUdeviceptr) -> Result<()> {
        // SAFETY: caller passes a live device range of at least src.len() bytes.
        unsafe {
            ck(
                "cuMemcpyHtoDAsync",
                result::memcpy_htod_async(dst, src, self.stream),
            )?;
        }
        self.sync()
    }

    pub fn copy_d2d(
        &self,
        dst: sys::CUdeviceptr,
        src: sys::CUdeviceptr,
        bytes: usize,
    ) -> Result<()> {
        // SAFETY: caller passes live, non-overlapping ranges.
        unsafe {
            ck(
                "cuMemcpyDtoDAsync",
                result::memcpy_dtod_async(dst, src, bytes, self.stream),
            )
        }
    }

    pub fn event(&self) -> Result<Event> {
        Ok(Event(ck(
            "cuEventCreate",
            result::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT),
        )?))
    }

    pub fn record(&self, e: &Event) -> Result<()> {
        // SAFETY: live event, our stream.
        unsafe { ck("cuEventRecord", result::event::record(e.0, self.stream)) }
    }

    /// Milliseconds between two recorded events (waits for the second).
    pub fn elapsed_ms(&self, start: &Event, end: &Event) -> Result<f64> {
        // SAFETY: live events recorded on our stream.
        unsafe {
            ck("cuEventSynchronize", result::event::synchronize(end.0))?;
            ck("cuEventElapsedTime", result::event::elapsed(start.0, end.0)).map(|ms| ms as f64)
        }
    }

    pub fn begin_capture(&self) -> Result<()> {
        // Thread-local mode: the capture sees only this thread's work, and any stray legacy-stream
        // call inside a kernel library fails the capture instead of silently escaping it.
        // SAFETY: our stream.
        unsafe {
            ck(
                "cuStreamBeginCapture",
                result::stream::begin_capture(
                    self.stream,
                    sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
                ),
            )
        }
    }

    pub fn end_capture(&self) -> Result<Graph> {
        // SAFETY: our stream, capture begun by begin_capture.
        let g = unsafe {
            ck(
                "cuStreamEndCapture",
                result::stream::end_capture(self.stream),
            )?
        };
        // SAFETY: g is a complete captured graph.
        let exec = unsafe {
            ck(
                "cuGraphInstantiate",
                result::graph::instantiate(g, sys::CUgraphInstantiate_flags(0)),
            )
        };
        match exec {
            Ok(exec) => Ok(Graph { graph: g, exec }),
            Err(e) => {
                // SAFETY: g is ours and not instantiated.
                unsafe {
                    let _ = result::graph::destroy(g);
                }
                Err(e)
            }
        }
    }

    /// Ends a capture that went wrong, so the stream is usable again.
    pub fn abort_capture(&self) {
        // SAFETY: our stream; the graph, if any, is destroyed at once.
        unsafe {
            if let Ok(g) = result::stream::end_capture(self.stream) {
                if !g.is_null() {
                    let _ = result::graph::destroy(g);
                }
            }
        }
    }

    pub fn launch_graph(&self, g: &Graph) -> Result<()> {
        // SAFETY: live graph exec, our stream.
        unsafe { ck("cuGraphLaunch", result::graph::launch(g.exec, self.stream)) }
    }

    /// Surfaces an asynchronous error (a kernel fault) as an error, after waiting for the stream.
    pub fn check_async(&self, what: &str) -> Result<()> {
        self.sync().map_err(|e| Error::Cuda(format!("{what}: {e}")))
    }
}

fn smi_query(ordinal: i32) -> Option<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            &format!("--id={ordinal}"),
            "--query-gpu=clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,power.limit,temperature.gpu,pstate,persistence_mode",
            "--format=csv,noheader",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub struct DeviceBuffer {
    pub ptr: sys::CUdeviceptr,
    pub bytes: usize,
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated by Gpu::alloc, freed once.
        unsafe {
            let _ = result::free_sync(self.ptr);
        }
    }
}

pub struct Event(pub sys::CUevent);

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: created by Gpu::event, destroyed once.
        unsafe {
            let _ = result::event::destroy(self.0);
        }
    }
}

pub struct Graph {
    graph: sys::CUgraph,
    exec: sys::CUgraphExec,
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: created by end_capture, destroyed once.
        unsafe {
            let _ = result::graph::exec_destroy(self.exec);
            let _ = result::graph::destroy(self.graph);
        }
    }
}

/// Page-locked host memory, for fast downloads of large outputs.
pub struct Pinned {
    ptr: *mut u8,
    len: usize,
}

impl Pinned {
    pub fn new(len: usize) -> Result<Pinned> {
        // SAFETY: plain pinned allocation.
        let ptr = unsafe {
            ck(
                &format!("cuMemAllocHost({len} bytes)"),
                result::malloc_host(len.max(1), 0),
            )?
        } as *mut u8;
        Ok(Pinned { ptr, len })
    }
    pub fn as_mut_slice(&mut self, len: usize) -> &mut [u8] {
        assert!(len <= self.len, "pinned staging buffer too small");
        // SAFETY: ptr is a live allocation of self.len bytes, uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, len) }
    }
    pub fn as_slice(&self, len: usize) -> &[u8] {
        assert!(len <= self.len, "pinned staging buffer too small");
        // SAFETY: ptr is a live allocation of self.len bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, len) }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: allocated by cuMemAllocHost, freed once.
        unsafe {
            let _ = result::free_host(self.ptr as *mut c_void);
        }
    }
}

// The worker drives the GPU from one thread; these handles are plain pointers owned by it.
unsafe impl Send for Pinned {}

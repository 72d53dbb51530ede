/*
 * A fake libnvidia-ml.so.1 for linkmeter's tests.
 *
 * It exports only the NVML entry points the GPU collector reaches through nvml-wrapper,
 * with the real names and C signatures, and answers from a small configuration file read
 * at nvmlInit_v2:
 *
 *   - the file named by the environment variable FAKE_NVML_CONFIG, if set and non-empty;
 *   - otherwise `fake_nvml.conf` in the directory this library was loaded from;
 *   - otherwise built-in defaults (one GPU).
 *
 * The file holds `key=value` lines; blank lines and lines starting with '#' are ignored,
 * unknown keys are ignored, and a line longer than the read buffer is skipped whole.
 *
 *   init_error=<code>          nvmlInit_v2 returns this NVML return code
 *   count=<n>                  device count (0..FAKE_NVML_MAX_GPUS)
 *   count_error=<code>         nvmlDeviceGetCount_v2 returns this code
 *   driver_version=<text>      nvmlSystemGetDriverVersion
 *   gpuN.name=<text>           gpuN.uuid=<text>
 *   gpuN.mem_total=<bytes>     gpuN.mem_used=<bytes>
 *   gpuN.util_gpu=<percent>    gpuN.util_mem=<percent>
 *   gpuN.temp=<celsius>        gpuN.power=<mW>            gpuN.power_limit=<mW>
 *   gpuN.mig=<0|1>             gpuN.pcie_gen=<n>          gpuN.pcie_width=<lanes>
 *   gpuN.fail_handle=1         nvmlDeviceGetHandleByIndex_v2 fails with GPU_IS_LOST
 *   gpuN.handle_error=<code>   nvmlDeviceGetHandleByIndex_v2 returns this code
 *   gpuN.<query>_error=<code>  the query returns this code; <query> is one of name, uuid,
 *                              mem, util, temp, power, power_limit, mig, pcie_gen, pcie_width
 *
 * Every library copy loaded from a different file is a separate instance with its own
 * state; within one instance a mutex guards the state.
 *
 * Compile with -DFAKE_NVML_NO_POWER to leave nvmlDeviceGetPowerUsage out, and with
 * -DFAKE_NVML_NO_SHUTDOWN to leave nvmlShutdown out (a library that is not really NVML).
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_GPU_IS_LOST = 15,
};

/* Buffer sizes nvml-wrapper passes (NVML_DEVICE_NAME_V2_BUFFER_SIZE etc.). */
#define FAKE_NVML_TEXT_MAX 96
#define FAKE_NVML_MAX_GPUS 128
#define FAKE_NVML_LINE_MAX 512

enum query {
    Q_NAME,
    Q_UUID,
    Q_MEM,
    Q_UTIL,
    Q_TEMP,
    Q_POWER,
    Q_POWER_LIMIT,
    Q_MIG,
    Q_PCIE_GEN,
    Q_PCIE_WIDTH,
    Q_COUNT
};

static const char *const query_names[Q_COUNT] = {
    "name", "uuid", "mem", "util", "temp", "power", "power_limit", "mig", "pcie_gen",
    "pcie_width",
};

/* The opaque nvmlDevice_t handed out is a pointer to one of these. */
struct fake_gpu {
    char name[FAKE_NVML_TEXT_MAX];
    char uuid[FAKE_NVML_TEXT_MAX];
    unsigned long long mem_total;
    unsigned long long mem_used;
    unsigned int util_gpu;
    unsigned int util_mem;
    unsigned int temp;
    unsigned int power;
    unsigned int power_limit;
    unsigned int mig;
    unsigned int pcie_gen;
    unsigned int pcie_width;
    nvmlReturn_t fail_handle;
    nvmlReturn_t errors[Q_COUNT];
};

/* nvmlMemory_v2_t as nvml-wrapper lays it out. */
typedef struct {
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

typedef struct {
    unsigned int gpu;
    unsigned int memory;
} nvmlUtilization_t;

typedef struct fake_gpu *nvmlDevice_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int init_refcount;
static unsigned int gpu_count;
static nvmlReturn_t count_error;
static char driver_version[FAKE_NVML_TEXT_MAX];
static struct fake_gpu gpus[FAKE_NVML_MAX_GPUS];

/* Copies src into a buffer of dst_size bytes, always NUL-terminated. */
static void copy_text(char *dst, size_t dst_size, const char *src) {
    size_t n = strlen(src);
    if (n >= dst_size) {
        n = dst_size - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void set_defaults(void) {
    gpu_count = 1;
    count_error = NVML_SUCCESS;
    copy_text(driver_version, sizeof driver_version, "550.54.15");
    for (unsigned int i = 0; i < FAKE_NVML_MAX_GPUS; i++) {
        struct fake_gpu *g = &gpus[i];
        memset(g, 0, sizeof *g);
        snprintf(g->name, sizeof g->name, "Fake NVIDIA GPU %u", i);
        snprintf(g->uuid, sizeof g->uuid, "GPU-00000000-0000-0000-0000-%012u", i);
        g->mem_total = 80ULL << 30;
        g->mem_used = 1ULL << 30;
        g->util_gpu = 0;
        g->util_mem = 0;
        g->temp = 30;
        g->power = 60000;
        g->power_limit = 700000;
        g->mig = 0;
        g->pcie_gen = 5;
        g->pcie_width = 16;
    }
}

/* Parses a whole decimal unsigned number; returns 0 on success. */
static int parse_u64(const char *s, unsigned long long max, unsigned long long *out) {
    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static void set_u32(unsigned int *field, const char *value) {
    unsigned long long v;
    if (parse_u64(value, UINT_MAX, &v) == 0) {
        *field = (unsigned int)v;
    }
}

static void set_code(nvmlReturn_t *field, const char *value) {
    unsigned long long v;
    if (parse_u64(value, INT_MAX, &v) == 0) {
        *field = (nvmlReturn_t)v;
    }
}

static void apply_gpu_key(struct fake_gpu *g, const char *key, const char *value) {
    unsigned long long v;
    if (strcmp(key, "name") == 0) {
        copy_text(g->name, sizeof g->name, value);
    } else if (strcmp(key, "uuid") == 0) {
        copy_text(g->uuid, sizeof g->uuid, value);
    } else if (strcmp(key, "mem_total") == 0) {
        if (parse_u64(value, ULLONG_MAX, &v) == 0) {
            g->mem_total = v;
        }
    } else if (strcmp(key, "mem_used") == 0) {
        if (parse_u64(value, ULLONG_MAX, &v) == 0) {
            g->mem_used = v;
        }
    } else if (strcmp(key, "util_gpu") == 0) {
        set_u32(&g->util_gpu, value);
    } else if (strcmp(key, "util_mem") == 0) {
        set_u32(&g->util_mem, value);
    } else if (strcmp(key, "temp") == 0) {
        set_u32(&g->temp, value);
    } else if (strcmp(key, "power") == 0) {
        set_u32(&g->power, value);
    } else if (strcmp(key, "power_limit") == 0) {
        set_u32(&g->power_limit, value);
    } else if (strcmp(key, "mig") == 0) {
        set_u32(&g->mig, value);
    } else if (strcmp(key, "pcie_gen") == 0) {
        set_u32(&g->pcie_gen, value);
    } else if (strcmp(key, "pcie_width") == 0) {
        set_u32(&g->pcie_width, value);
    } else if (strcmp(key, "fail_handle") == 0) {
        if (strcmp(value, "1") == 0) {
            g->fail_handle = NVML_ERROR_GPU_IS_LOST;
        } else if (strcmp(value, "0") == 0) {
            g->fail_handle = NVML_SUCCESS;
        }
    } else if (strcmp(key, "handle_error") == 0) {
        set_code(&g->fail_handle, value);
    } else {
        size_t klen = strlen(key);
        for (int q = 0; q < Q_COUNT; q++) {
            size_t qlen = strlen(query_names[q]);
            if (klen == qlen + 6 && strncmp(key, query_names[q], qlen) == 0 &&
                strcmp(key + qlen, "_error") == 0) {
                set_code(&g->errors[q], value);
                return;
            }
        }
    }
}

/* Strips leading and trailing blanks in place. */
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
                     s[n - 1] == '\n')) {
        s[--n] = '\0';
    }
    return s;
}

/* Applies one `key=value` line; returns an init error code to fail with, or 0. */
static nvmlReturn_t apply_line(char *line) {
    char *s = trim(line);
    if (*s == '\0' || *s == '#') {
        return NVML_SUCCESS;
    }
    char *eq = strchr(s, '=');
    if (eq == NULL) {
        return NVML_SUCCESS;
    }
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    unsigned long long v;

    if (strcmp(key, "init_error") == 0) {
        nvmlReturn_t code = NVML_SUCCESS;
        set_code(&code, value);
        return code;
    }
    if (strcmp(key, "count") == 0) {
        if (parse_u64(value, FAKE_NVML_MAX_GPUS, &v) == 0) {
            gpu_count = (unsigned int)v;
        }
    } else if (strcmp(key, "count_error") == 0) {
        set_code(&count_error, value);
    } else if (strcmp(key, "driver_version") == 0) {
        copy_text(driver_version, sizeof driver_version, value);
    } else if (strncmp(key, "gpu", 3) == 0) {
        char *dot = strchr(key + 3, '.');
        if (dot == NULL) {
            return NVML_SUCCESS;
        }
        *dot = '\0';
        if (parse_u64(key + 3, FAKE_NVML_MAX_GPUS - 1, &v) == 0) {
            apply_gpu_key(&gpus[v], dot + 1, value);
        }
    }
    return NVML_SUCCESS;
}

/* Finds the configuration file; writes its path into buf or returns -1 for none. */
static int config_path(char *buf, size_t size) {
    const char *env = getenv("FAKE_NVML_CONFIG");
    if (env != NULL && *env != '\0') {
        if (strlen(env) >= size) {
            return -1;
        }
        copy_text(buf, size, env);
        return 0;
    }
    Dl_info info;
    if (dladdr((const void *)&init_refcount, &info) == 0 || info.dli_fname == NULL) {
        return -1;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    if (slash == NULL) {
        return -1;
    }
    int n = snprintf(buf, size, "%.*s/fake_nvml.conf", (int)(slash - info.dli_fname),
                     info.dli_fname);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

/* Loads defaults then the configuration file; returns the init error it asks for. */
static nvmlReturn_t load_config(void) {
    set_defaults();
    char path[4096];
    if (config_path(path, sizeof path) != 0) {
        return NVML_SUCCESS;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NVML_SUCCESS;
    }
    nvmlReturn_t result = NVML_SUCCESS;
    char line[FAKE_NVML_LINE_MAX];
    while (fgets(line, sizeof line, f) != NULL) {
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
            /* Too long: drop the rest of this line and ignore it. */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n') {
            }
            continue;
        }
        nvmlReturn_t r = apply_line(line);
        if (r != NVML_SUCCESS) {
            result = r;
        }
    }
    fclose(f);
    return result;
}

/* Resolves a handle to its GPU, or NULL when it is not one this library handed out. */
static struct fake_gpu *lookup(nvmlDevice_t device) {
    for (unsigned int i = 0; i < gpu_count; i++) {
        if (device == &gpus[i]) {
            return device;
        }
    }
    return NULL;
}

/*
 * Common prologue of device queries: takes the lock, checks state and handle, and
 * applies any injected error. On NVML_SUCCESS the lock is held and *out is set.
 */
static nvmlReturn_t begin_query(nvmlDevice_t device, enum query q, const void *arg,
                                struct fake_gpu **out) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = NVML_SUCCESS;
    struct fake_gpu *g = NULL;
    if (init_refcount == 0) {
        r = NVML_ERROR_UNINITIALIZED;
    } else if ((g = lookup(device)) == NULL || arg == NULL) {
        r = NVML_ERROR_INVALID_ARGUMENT;
    } else if (g->errors[q] != NVML_SUCCESS) {
        r = g->errors[q];
    }
    if (r != NVML_SUCCESS) {
        pthread_mutex_unlock(&lock);
        return r;
    }
    *out = g;
    return NVML_SUCCESS;
}

static nvmlReturn_t end_query(nvmlReturn_t r) {
    pthread_mutex_unlock(&lock);
    return r;
}

static nvmlReturn_t write_text(char *dst, unsigned int length, const char *src) {
    if (dst == NULL) {
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    size_t n = strlen(src);
    if (n >= length) {
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    memcpy(dst, src, n + 1);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = NVML_SUCCESS;
    if (init_refcount == 0) {
        r = load_config();
    }
    if (r == NVML_SUCCESS) {
        init_refcount++;
    }
    pthread_mutex_unlock(&lock);
    return r;
}

#ifndef FAKE_NVML_NO_SHUTDOWN
EXPORT nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = NVML_SUCCESS;
    if (init_refcount == 0) {
        r = NVML_ERROR_UNINITIALIZED;
    } else {
        init_refcount--;
    }
    pthread_mutex_unlock(&lock);
    return r;
}
#endif

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = init_refcount == 0 ? NVML_ERROR_UNINITIALIZED
                                        : write_text(version, length, driver_version);
    pthread_mutex_unlock(&lock);
    return r;
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = NVML_SUCCESS;
    if (init_refcount == 0) {
        r = NVML_ERROR_UNINITIALIZED;
    } else if (count == NULL) {
        r = NVML_ERROR_INVALID_ARGUMENT;
    } else if (count_error != NVML_SUCCESS) {
        r = count_error;
    } else {
        *count = gpu_count;
    }
    pthread_mutex_unlock(&lock);
    return r;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    pthread_mutex_lock(&lock);
    nvmlReturn_t r = NVML_SUCCESS;
    if (init_refcount == 0) {
        r = NVML_ERROR_UNINITIALIZED;
    } else if (device == NULL || index >= gpu_count) {
        r = NVML_ERROR_INVALID_ARGUMENT;
    } else if (gpus[index].fail_handle != NVML_SUCCESS) {
        r = gpus[index].fail_handle;
    } else {
        *device = &gpus[index];
    }
    pthread_mutex_unlock(&lock);
    return r;
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    struct fake_gpu *g;
    nvmlReturn_t r = begin_query(device, Q_NAME, name, &g);
    return r != NVML_SUCCESS ? r : end_query(write_text(name, length, g->name));
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    struct fake_gpu *g;
    nvmlReturn_t r = begin_query(device, Q_UUID, uuid, &g);
    return r != NVML_SUCCESS ? r : end_query(write_text(uuid, length, g->uuid));
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    struct fake_gpu *g;
    nvmlReturn_t r = begin_query(device, Q_MEM, memory, &g);
    if (r != NVML_SUCCESS) {
        return r;
    }
    memory->total = g->mem_total;
    memory->used = g->mem_used;
    memory->reserved = 0;
    memory->free = g->mem_total > g->mem_used ? g->mem_total - g->mem_used : 0;
    return end_query(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                  nvmlUtilization_t *utilization) {
    struct fake_gpu *g;
    nvmlReturn_t r = begin_query(device, Q_UTIL, utilization, &g);
    if (r != NVML_SUCCESS) {
        return r;
    }
    utilization->gpu = g->util_gpu;
    utilization->memory = g->util_mem;
    return end_query(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor,
                                             unsigned int *temp) {
    struct fake_gpu *g;
    nvmlReturn_t r = begin_query(device, Q_TEMP, temp, &g);
    if (r != NVML_SUCCESS) {
        return r;
    }
    /* NVML_TEMPERATURE_GPU is the only sensor NVML defines. */
    if (sensor != 0) {
        return end_query(NVML_ERROR_INVALID_ARGUMENT);
    }
    *temp = g->temp;
    return end_query(NVML_SUCCESS);
}

#ifndef FAKE_NVML_NO_POWER
EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    struct fake_gpu *g;
    nvmlReturn_t r = begin_query(device, Q_POWER, power, &g);
    if (r != NVML_SUCCESS) {
        return r;
    }
    *power = g->power;
    return end_query(NVML_SUCCESS);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit) {
    struct fake_gpu *g;
    nvmlReturn_t r = begin_query(device, Q_POWER_LIMIT, limit, &g);
    if (r != NVML_SUCCESS) {
        return r;
    }
    *limit = g->power_limit;
    return end_query(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current,
                                         unsigned int *pending) {
    struct fake_gpu *g;
    nvmlReturn_t r = begin_query(device, Q_MIG, current, &g);
    if (r != NVML_SUCCESS) {
        return r;
    }
    if (pending == NULL) {
        return end_query(NVML_ERROR_INVALID_ARGUMENT);
    }
    *current = g->mig;
    *pending = g->mig;
    return end_query(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device,
                                                        unsigned int *gen) {
    struct fake_gpu *g;
    nvmlReturn_t r = begin_query(device, Q_PCIE_GEN, gen, &g);
    if (r != NVML_SUCCESS) {
        return r;
    }
    *gen = g->pcie_gen;
    return end_query(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device, unsigned int *width) {
    struct fake_gpu *g;
    nvmlReturn_t r = begin_query(device, Q_PCIE_WIDTH, width, &g);
    if (r != NVML_SUCCESS) {
        return r;
    }
    *width = g->pcie_width;
    return end_query(NVML_SUCCESS);
}

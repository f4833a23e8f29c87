// dev/simt/test_rewrite_launches.cu: tricky <<<>>> launches that the CPU build's launch rewrite
// (dev/simt/rewrite_launches.py) must turn into working calls: nested template arguments with
// commas, qualified names, launches over several lines, odd spacing, "<<<" inside comments and
// strings, line numbers kept. Every kernel writes a mark that the test checks. On the CPU it also
// runs the rewriter on snippets: the SIMT_SHARED_POISON it adds after static __shared__
// declarations, and its error messages for broken launches. Compiles with nvcc too.
#include <cstring>
#include <string>

#include "dev/simt/kernel_test.h"

template <class T, int N> struct Pair {
    static constexpr int value = N * (int)sizeof(T);
};

template <class P, int Extra> __global__ void template_kernel(int* out) {
    if (threadIdx.x == 0) out[0] = P::value + Extra;
}

namespace tricky {
__global__ void add_kernel(int* out, int a, int b) {
    atomicAdd(out, a + b);  // every thread of every block adds
}
}  // namespace tricky

template <bool Flag> __global__ void flag_kernel(int* out) {
    if (threadIdx.x == 0 && blockIdx.x == 0) out[0] = Flag ? 11 : 22;
}

__global__ void no_args_kernel() {}

__global__ void smem_kernel(int* out) {
    DYNAMIC_SHARED(int, buffer);
    buffer[threadIdx.x] = (int)threadIdx.x;
    __syncthreads();
    if (threadIdx.x == 0) {
        int sum = 0;
        for (unsigned i = 0; i < blockDim.x; i++) sum += buffer[i];
        out[0] = sum;
    }
}

static std::string named_buffer;
static const char* named(const char* check, const char* order) {
    named_buffer = std::string(check) + " order=" + order;
    return named_buffer.c_str();
}

static int read_back(const int* d) {
    int v;
    CUDA_CHECK(cudaMemcpy(&v, d, sizeof v, cudaMemcpyDeviceToHost));
    return v;
}

#if SIMT_CPU
// Runs the rewriter on `source` (output in build/cpu/rewrite_test_output.cu); returns its exit
// status, with its messages in `messages`.
static int run_rewriter(const char* source, std::string& messages) {
    const char* in = "build/cpu/rewrite_test_input.cu";
    FILE* f = fopen(in, "w");
    if (!f) return -1;
    fputs(source, f);
    fclose(f);
    FILE* p = popen("python3 dev/simt/rewrite_launches.py build/cpu/rewrite_test_input.cu "
                    "build/cpu/rewrite_test_output.cu 2>&1", "r");
    char buf[512];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) messages.append(buf, got);
    return pclose(p);
}
#endif

int main() {
    int* d_out;
    CUDA_CHECK(cudaMalloc(&d_out, sizeof(int)));
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreate(&stream));

    for_each_thread_order([&](const char* order) {
        // nested template arguments with commas
        template_kernel<Pair<int, 3>, 7><<<1, 32>>>(d_out);
        test_report(read_back(d_out) == 3 * 4 + 7, named("rewrite: nested template arguments", order), "got %d", read_back(d_out));

        // qualified name, a launch over several lines, config expressions with commas, a stream
        CUDA_CHECK(cudaMemset(d_out, 0, sizeof(int)));
        const int before = __LINE__;
        tricky::add_kernel<<<dim3(2, 1),
                             dim3(4, 2), 0,
                             stream>>>(d_out,
                                       std::max(1, 2),  /* a comment with <<<1, 1>>>() */
                                       3);
        const int after = __LINE__;
        CUDA_CHECK(cudaStreamSynchronize(stream));
        test_report(read_back(d_out) == 2 * 8 * (2 + 3), named("rewrite: multi-line launch with a stream", order), "got %d", read_back(d_out));
        test_report(after - before == 6, named("rewrite: line numbers kept after a multi-line launch", order),
                    "__LINE__ moved by %d over 6 lines", after - before);

        // '>' inside parenthesised template arguments, odd spacing, no arguments
        flag_kernel<(3 > 2)> <<< 1 , 32 >>> ( d_out );
        test_report(read_back(d_out) == 11, named("rewrite: (a > b) template argument and spacing", order), "got %d", read_back(d_out));
        no_args_kernel<<<1, 1>>>();
        CUDA_CHECK(cudaGetLastError());

        // dynamic shared memory size as the third value
        smem_kernel<<<1, 64, 64 * sizeof(int)>>>(d_out);
        test_report(read_back(d_out) == 63 * 64 / 2, named("rewrite: dynamic shared memory", order), "got %d", read_back(d_out));

        // strings and characters stay as they are
        const char* text = "k<<<1, 2>>>(x) // not a comment";
        const char open = '<';
        test_report(strcmp(text, (std::string("k<<") + "<1, 2>>>(x) // not a comment").c_str()) == 0 && open == '<',
                    named("rewrite: string and character literals untouched", order));

        // a bad configuration is an error of the launch, as on a GPU
        no_args_kernel<<<1, 2048>>>();
        test_report(cudaGetLastError() == cudaErrorInvalidConfiguration, named("launch: 2048 threads is an invalid configuration", order));
        test_report(cudaGetLastError() == cudaSuccess, named("launch: cudaGetLastError clears the error", order));
    });

#if SIMT_CPU
    // static __shared__ declarations in functions get SIMT_SHARED_POISON after them, same line
    struct Poison {
        const char* name;
        const char* source;
        const char* expect;  // in the output, or nullptr: no SIMT_SHARED_POISON at all
    } poison[] = {
        {"rewrite: __shared__ declarators each poisoned", "__global__ void k() {\n  __shared__ int a[2], b, c[3][4];\n}\n",
         "__shared__ int a[2], b, c[3][4]; SIMT_SHARED_POISON(a); SIMT_SHARED_POISON(b); SIMT_SHARED_POISON(c);\n}"},
        {"rewrite: multi-line __shared__ declaration, lines kept", "__global__ void k() {\n  __shared__ __align__(16) float s[A ? 2\n : 4];\n}\n",
         "__shared__ __align__(16) float s[A ? 2\n : 4]; SIMT_SHARED_POISON(s);\n}\n"},
        {"rewrite: extern __shared__ left alone", "__global__ void k() { extern __shared__ float d[]; }\n", nullptr},
        {"rewrite: namespace-scope __shared__ left alone", "namespace n {\n__shared__ int g[4];\n}\n", nullptr},
    };
    for (const Poison& c : poison) {
        std::string messages, output;
        const int status = run_rewriter(c.source, messages);
        if (FILE* f = fopen("build/cpu/rewrite_test_output.cu", "r")) {
            char buf[512];
            size_t got;
            while ((got = fread(buf, 1, sizeof buf, f)) > 0) output.append(buf, got);
            fclose(f);
        }
        const bool ok = status == 0 && (c.expect ? output.find(c.expect) != std::string::npos
                                                 : output.find("SIMT_SHARED_POISON") == std::string::npos);
        test_report(ok, c.name, "status %d, output:\n%s", status, output.c_str());
    }

    struct Bad {
        const char* name;
        const char* source;
        const char* message;
    } bad[] = {
        {"rewrite error: missing >>>", "int x;\nk<<<1, 2(x);\n", "rewrite_test_input.cu:2: '<<<' without a matching '>>>'"},
        {"rewrite error: no arguments after >>>", "k<<<1, 2>>>;\n", "rewrite_test_input.cu:1: expected '('"},
        {"rewrite error: one launch value", "\n\nk<<<1>>>(x);\n", "rewrite_test_input.cu:3: a launch needs 2 to 4 values"},
        {"rewrite error: unclosed arguments", "k<<<1, 2>>>(x;\n", "rewrite_test_input.cu:1: unbalanced '('"},
    };
    for (const Bad& b : bad) {
        std::string messages;
        int status = run_rewriter(b.source, messages);
        test_report(status != 0 && messages.find(b.message) != std::string::npos, b.name,
                    "status %d, messages: %s", status, messages.c_str());
    }
#endif
    CUDA_CHECK(cudaStreamDestroy(stream));
    CUDA_CHECK(cudaFree(d_out));
    return test_exit();
}

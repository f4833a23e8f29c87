// Tests of the atomic write (common/atomic_file.h): the new contents replace the old only on
// commit; every failure (a write the caller saw fail, a missing directory, a rename onto a
// directory, an abandoned writer) leaves the old file as it was, no PATH.tmp behind, and an error
// that names the file.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "dev/test_util.h"

static std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}
static bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }
static bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

int main() {
    char tmpl[] = "/tmp/test_atomic_file.XXXXXX";
    const std::string dir = mkdtemp(tmpl), path = dir + "/file.bin";
    std::string err;

    // a new file, then a replacement from several parts
    bool ok = write_file_atomic(path, std::string("first"), &err);
    test_report(ok && read_file(path) == "first" && !exists(path + ".tmp"), "atomic_write_new_file", "%s", err.c_str());
    const char a[] = "ab", b[] = "cde";
    ok = write_file_atomic(path, {{a, 2}, {b, 3}}, &err);
    test_report(ok && read_file(path) == "abcde" && !exists(path + ".tmp"), "atomic_write_replaces_from_parts", "%s",
                err.c_str());

    // streaming: nothing visible at the path until commit
    {
        AtomicFile f;
        ok = f.open(path, &err) && fputs("streamed", f.file()) >= 0 && fflush(f.file()) == 0;
        bool unchanged_before_commit = read_file(path) == "abcde";
        ok = ok && f.commit(&err);
        test_report(ok && unchanged_before_commit && read_file(path) == "streamed" && !exists(path + ".tmp"),
                    "atomic_write_visible_only_on_commit", "%s", err.c_str());
    }

    // a write the caller saw fail: discarded, with an error naming the file
    {
        AtomicFile f;
        ok = f.open(path, &err) && fputs("half", f.file()) >= 0;
        bool committed = f.commit(&err, false);
        test_report(ok && !committed && read_file(path) == "streamed" && !exists(path + ".tmp") &&
                        contains(err, path + ".tmp: write failed") && contains(err, path + " is unchanged"),
                    "atomic_write_failed_write_discarded", "committed %d, error '%s'", committed, err.c_str());
    }

    // abandoned (no commit): the destructor removes the temporary file
    {
        AtomicFile f;
        ok = f.open(path, &err) && fputs("abandoned", f.file()) >= 0;
    }
    test_report(ok && read_file(path) == "streamed" && !exists(path + ".tmp"), "atomic_write_abandoned_discarded");

    // a directory that does not exist
    const std::string missing = dir + "/no/such/dir/file.bin";
    ok = write_file_atomic(missing, std::string("x"), &err);
    test_report(!ok && contains(err, missing + ".tmp: cannot create") && !exists(missing + ".tmp"),
                "atomic_write_missing_directory", "error '%s'", err.c_str());

    // the rename fails (the path is a directory): the temporary file is removed
    const std::string a_dir = dir + "/is_a_directory";
    mkdir(a_dir.c_str(), 0755);
    ok = write_file_atomic(a_dir, std::string("x"), &err);
    test_report(!ok && err.find(a_dir + ": cannot rename") == 0 && !exists(a_dir + ".tmp"),
                "atomic_write_rename_fails", "error '%s'", err.c_str());

    // issue 10: a symlink or FIFO at the path is refused and left as it is; a symlink planted at
    // PATH.tmp is replaced, never written through
    const std::string target = dir + "/target.txt", link = dir + "/link.txt", fifo = dir + "/fifo";
    write_file_atomic(target, std::string("keep"), &err);
    bool linked = symlink(target.c_str(), link.c_str()) == 0;
    ok = write_file_atomic(link, std::string("new"), &err);
    struct stat st;
    test_report(linked && !ok && contains(err, "is a symbolic link") && read_file(target) == "keep" &&
                lstat(link.c_str(), &st) == 0 && S_ISLNK(st.st_mode), "atomic_write_refuses_symlink", "error '%s'", err.c_str());
    bool made = mkfifo(fifo.c_str(), 0600) == 0;
    ok = write_file_atomic(fifo, std::string("new"), &err);
    test_report(made && !ok && contains(err, "is a FIFO") && stat(fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode),
                "atomic_write_refuses_fifo", "error '%s'", err.c_str());
    const std::string out = dir + "/out.txt";
    bool planted = symlink(target.c_str(), (out + ".tmp").c_str()) == 0;
    ok = write_file_atomic(out, std::string("fresh"), &err);
    test_report(planted && ok && read_file(out) == "fresh" && read_file(target) == "keep" && !exists(out + ".tmp"),
                "atomic_write_replaces_planted_tmp_symlink", "ok %d error '%s'", (int)ok, err.c_str());

    std::string cmd = "rm -rf " + dir;
    if (system(cmd.c_str()) != 0) printf("note: could not remove %s\n", dir.c_str());
    return test_exit();
}

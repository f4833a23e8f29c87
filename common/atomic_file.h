// Writing a file so that readers (and a crash) see either the old file or the complete new one,
// never a partial one: the bytes go to PATH.tmp in the same directory, which is flushed, fsynced,
// renamed over PATH, and then the directory is fsynced so the rename itself is on disk. On any
// failure the temporary file is removed and PATH is left as it was.
//
//   AtomicFile f;                       streaming writers (seek back to patch a header, ...)
//   if (!f.open(path, &err)) ...;       then fwrite(..., f.file()), then f.commit(&err)
//   write_file_atomic(path, bytes, &err)              one buffer
//   write_file_atomic(path, {{ptr, n}, ...}, &err)    several buffers, in order
#pragma once
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

// fsync of the directory that holds `path`, so a rename into it survives a crash.
inline bool fsync_parent_dir(const std::string& path, std::string* err) {
    size_t slash = path.find_last_of('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) { *err = dir + ": cannot open the directory to sync it: " + strerror(errno); return false; }
    bool ok = fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok) { *err = dir + ": cannot sync the directory: " + strerror(e); return false; }
    return true;
}

class AtomicFile {
public:
    AtomicFile() = default;
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    ~AtomicFile() { discard(); }

    // Creates PATH.tmp for writing (replacing a stale one from an earlier crash). Refuses a PATH
    // that exists and is a symlink, FIFO, socket or device node: the rename would replace that
    // node with a regular file (over a directory the rename fails, and commit() says so).
    // PATH.tmp is created afresh (O_EXCL), so a symlink planted there is removed, never written
    // through.
    bool open(const std::string& path, std::string* err) {
        discard();
        path_ = path;
        tmp_ = path + ".tmp";
        struct stat st;
        if (lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
            const char* kind = S_ISLNK(st.st_mode) ? "a symbolic link" : S_ISFIFO(st.st_mode) ? "a FIFO"
                             : S_ISSOCK(st.st_mode) ? "a socket" : "a device node";
            *err = path + ": exists and is " + kind + ", not a regular file; refusing to replace it (write to a "
                   "new path, or give the link's target itself)";
            return false;
        }
        unlink(tmp_.c_str());
        int fd = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        f_ = fd < 0 ? nullptr : fdopen(fd, "wb");
        if (fd >= 0 && !f_) close(fd);
        if (!f_) {
            *err = tmp_ + ": cannot create: " + strerror(errno) + "; check that the directory exists and is writable";
            return false;
        }
        return true;
    }
    FILE* file() const { return f_; }

    // Flushes, fsyncs and closes the temporary file, renames it over the path and fsyncs the
    // directory. `ok` = false (a write the caller saw fail) discards instead. Errors name the
    // file and the reason; the temporary file never outlives a failure.
    bool commit(std::string* err, bool ok = true) {
        if (!f_) { *err = path_ + ": nothing to write (the file was not opened)"; return false; }
        int e = errno;
        if (ok && (fflush(f_) != 0 || fsync(fileno(f_)) != 0)) { ok = false; e = errno; }
        if (ok && ferror(f_)) ok = false;
        if (fclose(f_) != 0 && ok) { ok = false; e = errno; }
        f_ = nullptr;
        if (!ok) {
            remove(tmp_.c_str());
            *err = tmp_ + ": write failed: " + (e ? strerror(e) : "I/O error") + "; check free disk space; " + path_ + " is unchanged";
            return false;
        }
        if (rename(tmp_.c_str(), path_.c_str()) != 0) {
            e = errno;
            remove(tmp_.c_str());
            *err = path_ + ": cannot rename " + tmp_ + " into place: " + strerror(e);
            return false;
        }
        return fsync_parent_dir(path_, err);
    }

    // Closes and removes the temporary file, if any (the destructor does this too).
    void discard() {
        if (!f_) return;
        fclose(f_);
        f_ = nullptr;
        remove(tmp_.c_str());
    }

private:
    FILE* f_ = nullptr;
    std::string path_, tmp_;
};

inline bool write_file_atomic(const std::string& path, const std::vector<std::pair<const void*, size_t>>& parts,
                              std::string* err) {
    AtomicFile f;
    if (!f.open(path, err)) return false;
    bool ok = true;
    for (const auto& p : parts) ok = ok && fwrite(p.first, 1, p.second, f.file()) == p.second;
    return f.commit(err, ok);
}

inline bool write_file_atomic(const std::string& path, const std::string& bytes, std::string* err) {
    return write_file_atomic(path, {{bytes.data(), bytes.size()}}, err);
}

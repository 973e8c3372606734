/* The pool of non-secret random bytes (util/random.c) when madvise cannot be trusted: this
 * program is linked with -Wl,--wrap=madvise (tests/CMakeLists.txt), and the wrapper plays a
 * kernel (qemu-user) that answers every madvise with 0 and wipes nothing on fork, or one that
 * answers the unknown advice honestly but still ignores MADV_WIPEONFORK. Either way a parent
 * and the child it forks after filling its pool must not hand out the same bytes (they become
 * AES-GCM IVs and key ids). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/random.h"

static int honest_unknown_advice; /* 1: madvise(-1) fails as a kernel's does */
static int wipe_calls;

int __wrap_madvise(void *addr, size_t len, int advice);
int __wrap_madvise(void *addr, size_t len, int advice)
{
    (void)addr;
    (void)len;
    if (advice == -1 && honest_unknown_advice) {
        return -1;
    }
    wipe_calls += advice == MADV_WIPEONFORK;
    return 0; /* and nothing done */
}

/* 16 bytes drawn in a forked child, against 16 drawn in the parent after it. */
static void parent_and_child_differ(void)
{
    uint8_t warm[16], parent[16], child[16];
    int fds[2];
    kms_random_public(warm, sizeof warm); /* the pool is filled before the fork */
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t c[16];
        kms_random_public(c, sizeof c);
        _exit(write(fds[1], c, sizeof c) == (ssize_t)sizeof c ? 0 : 1);
    }
    kms_random_public(parent, sizeof parent);
    assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);
    close(fds[1]);
    assert_memory_not_equal(parent, child, sizeof parent);
}

/* madvise says yes to everything: the pool is not trusted (no wipe-on-fork advice is relied on). */
static void lying_madvise(void **state)
{
    (void)state;
    honest_unknown_advice = 0;
    parent_and_child_differ();
    assert_int_equal(wipe_calls, 0);
}

static void *in_thread(void *arg)
{
    (void)arg;
    parent_and_child_differ();
    return NULL;
}

/* madvise fails an unknown advice but ignores MADV_WIPEONFORK: the fork generation still tells
 * the child apart (a fresh thread, so that its pool is made under this wrapper). */
static void wipe_ignored(void **state)
{
    (void)state;
    honest_unknown_advice = 1;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, in_thread, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(wipe_calls > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lying_madvise),
        cmocka_unit_test(wipe_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

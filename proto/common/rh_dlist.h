/*
 * rh_dlist.h — intrusive doubly-linked lists, header-only, no dependencies. Nodes carry their own
 * link pointers; nothing is allocated and nothing is freed here.
 *
 *  - RH_DLIST_PUSH / RH_DLIST_UNLINK: a list known by its first node only (nodes with fields
 *    `prev`/`next`), e.g. a server's connections or calls, the relay's transactions;
 *  - RH_QUEUE_APPEND / RH_QUEUE_UNLINK: a list with first and last node (a FIFO any node can leave
 *    from the middle), link fields named by the caller, e.g. deadline lists (rh_deadlines.c), the
 *    client pool's idle connections, a cluster node's in-flight records.
 * All are O(1). A node must be on the list it is unlinked from (not checked).
 */
#ifndef RH_DLIST_H
#define RH_DLIST_H

/* Inserts node n at the front of the list whose first node is `head` (an lvalue). */
#define RH_DLIST_PUSH(head, n)                                                                     \
    do {                                                                                           \
        (n)->prev = NULL;                                                                          \
        (n)->next = (head);                                                                        \
        if (head)                                                                                  \
            (head)->prev = (n);                                                                    \
        (head) = (n);                                                                              \
    } while (0)

/* Removes node n (on the list `head`) and clears its links. */
#define RH_DLIST_UNLINK(head, n)                                                                   \
    do {                                                                                           \
        if ((n)->prev)                                                                             \
            (n)->prev->next = (n)->next;                                                           \
        else                                                                                       \
            (head) = (n)->next;                                                                    \
        if ((n)->next)                                                                             \
            (n)->next->prev = (n)->prev;                                                           \
        (n)->prev = (n)->next = NULL;                                                              \
    } while (0)

/* Appends node n after `tail` (head and tail are lvalues, both NULL for an empty list); PF and NF
 * name the node's previous/next link fields. */
#define RH_QUEUE_APPEND(head, tail, n, PF, NF)                                                     \
    do {                                                                                           \
        (n)->NF = NULL;                                                                            \
        (n)->PF = (tail);                                                                          \
        if (tail)                                                                                  \
            (tail)->NF = (n);                                                                      \
        else                                                                                       \
            (head) = (n);                                                                          \
        (tail) = (n);                                                                              \
    } while (0)

/* Removes node n from the list (head, tail) and clears its links; PF/NF as for RH_QUEUE_APPEND. */
#define RH_QUEUE_UNLINK(head, tail, n, PF, NF)                                                     \
    do {                                                                                           \
        if ((n)->PF)                                                                               \
            (n)->PF->NF = (n)->NF;                                                                 \
        else                                                                                       \
            (head) = (n)->NF;                                                                      \
        if ((n)->NF)                                                                               \
            (n)->NF->PF = (n)->PF;                                                                 \
        else                                                                                       \
            (tail) = (n)->PF;                                                                      \
        (n)->PF = (n)->NF = NULL;                                                                  \
    } while (0)

#endif

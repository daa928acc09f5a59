; Broken on purpose: iadd pops two values, only one was pushed.
; expect: Unable to pop operand off an empty stack
.class public BadUnderflow
.super java/lang/Object

.method public static main([Ljava/lang/String;)V
    .limit stack 2
    .limit locals 1
    iconst_1
    iadd
    pop
    return
.end method

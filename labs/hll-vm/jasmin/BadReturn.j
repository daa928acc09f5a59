; Broken on purpose: a method declared to return int falls off with a plain return.
; expect: Wrong return type in function
.class public BadReturn
.super java/lang/Object

.method public static answer()I
    .limit stack 1
    .limit locals 0
    bipush 42
    return
.end method

.method public static main([Ljava/lang/String;)V
    .limit stack 1
    .limit locals 1
    invokestatic BadReturn/answer()I
    pop
    return
.end method
